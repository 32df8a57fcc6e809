#!/usr/bin/env bash
# Installs the pinned Claude Code CLI (about 380 MB) into .tools/claude-code, which git ignores, for the
# tests that drive the real `claude` (plugin validate/install, mcp list). Not a dependency of Duo itself:
# a user's `bun install` stays small. Safe to run again: it does nothing when the right version is there.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=2.1.332
DIR=.tools/claude-code
BIN="$DIR/node_modules/.bin/claude"

if [ -x "$BIN" ] && "$BIN" --version 2>/dev/null | grep -q "^${VERSION} "; then
  echo "claude ${VERSION} already in ${DIR}"
  exit 0
fi
mkdir -p "$DIR"
echo "installing @anthropic-ai/claude-code@${VERSION} into ${DIR}"
npm install --prefix "$DIR" --no-save --no-audit --no-fund --loglevel=error "@anthropic-ai/claude-code@${VERSION}"
"$BIN" --version
