// The plugin through the real Claude Code CLI (pinned, installed by scripts/install-claude-code.sh into .tools/):
// it validates, installs from the local marketplace, its server connects, and the README's commands work as written.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import type { RunningBroker } from '../../src/http/server.ts'
import { cleanTempDirs, inProcessBroker, ROOT, tempDir, waitFor } from '../partner/helpers.ts'
import { fastOnly } from '../slow.ts'

const CLAUDE = process.env.DUO_CLAUDE_BIN ?? join(ROOT, '.tools/claude-code/node_modules/.bin/claude')
const present = existsSync(CLAUDE)
const inCi = Boolean(process.env.DUO_CI || process.env.CI)
// Each `claude` run takes about a second here, several under load; a test runs up to a dozen.
const CLI_TIMEOUT_MS = 120_000

if (!present && !inCi) {
  console.error(
    `SKIPPED: the Claude Code CLI tests (test/plugin/claude-cli.test.ts): no CLI at ${CLAUDE}. ` +
      'Install it with `bash scripts/install-claude-code.sh` (CI does).',
  )
}

test.if(inCi)('CI has the Claude Code CLI for the plugin tests', () => {
  expect({ cli: CLAUDE, present }).toEqual({ cli: CLAUDE, present: true })
})

/** A fresh Claude Code home: HOME and CLAUDE_CONFIG_DIR in a temp dir, so nothing of the machine's is read or written. */
function claudeHome() {
  const home = tempDir('duo-claude-home-')
  const project = join(home, 'project-x')
  mkdirSync(project)
  const { CLAUDE_PROJECT_DIR, DUO_PROJECT_DIR, PARTNER_ID, PARTNER_NAME, BROKER_URL, ...inherited } = process.env as Record<string, string>
  const env = {
    ...inherited,
    HOME: home,
    CLAUDE_CONFIG_DIR: join(home, '.claude'),
    PATH: `${dirname(CLAUDE)}:${process.env.PATH ?? ''}`,
    DUO_CONFIG: join(home, 'no-duo-config.json'),
  }
  const run = async (command: string, extra: Record<string, string> = {}) => {
    const proc = Bun.spawn(['bash', '-c', command], { cwd: project, env: { ...env, ...extra }, stdout: 'pipe', stderr: 'pipe' })
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
    return { code, out: stdout + stderr }
  }
  return { home, project, run }
}

// Each `claude` call takes a second or more: slow tests, skipped by DUO_FAST=1.
describe.skipIf(!present || fastOnly)('the Claude Code CLI (2.1.332)', () => {
  let broker: RunningBroker
  beforeAll(async () => {
    broker = await inProcessBroker()
  })
  afterAll(async () => {
    await broker.stop()
    cleanTempDirs()
  })

  test('is the pinned version', async () => {
    const { run } = claudeHome()
    expect((await run('claude --version')).out).toContain('2.1.332')
  }, CLI_TIMEOUT_MS)

  test('claude plugin validate --strict passes on the marketplace and on the plugin', async () => {
    const { run } = claudeHome()
    for (const path of [ROOT, join(ROOT, 'plugins/duo')]) {
      const validated = await run(`claude plugin validate --strict '${path}'`)
      expect({ path, code: validated.code, passed: validated.out.includes('Validation passed') }).toEqual({ path, code: 0, passed: true })
    }
  }, CLI_TIMEOUT_MS)

  test('installs from the local marketplace; claude mcp list shows its server connected, and it reached the broker', async () => {
    const { run } = claudeHome()
    expect(await run(`claude plugin marketplace add '${ROOT}'`)).toMatchObject({ code: 0 })
    expect(await run('claude plugin install duo@duo')).toMatchObject({ code: 0 })
    const listed = await run('claude plugin list')
    expect(listed.out).toContain('duo@duo')
    expect(listed.out).toMatch(/duo@duo[\s\S]*enabled/)
    const details = await run('claude plugin details duo@duo')
    expect(details.out).toContain('SessionStart, UserPromptSubmit, Stop')

    const health = await run('claude mcp list', { BROKER_URL: broker.url })
    expect(health.out).toMatch(/plugin:duo:duo: .*src\/partner\/index\.ts - ✔ Connected/)
    // The health check's partner registered as the project, and left it offline again (it was the only session).
    const partners = async () => {
      const response = await fetch(`${broker.url}/partners`, { headers: { authorization: `Bearer ${broker.adminToken}` } })
      return ((await response.json()) as { partners: Array<{ id: string; status: string }> }).partners
    }
    await waitFor('the health check to register and leave', async () =>
      (await partners()).some((p) => p.id === 'project-x' && p.status === 'offline'),
    10_000)
  }, CLI_TIMEOUT_MS)

  test("every claude plugin/mcp command in the README works as written", async () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
    const commands = [...readme.matchAll(/^(claude (?:plugin|mcp) .+)$|`(claude (?:plugin|mcp) [^`]+)`/gm)]
      .map((m) => (m[1] ?? m[2])!)
      // Prose that names a command ("the partner added with `claude mcp add` alone") is not a command to run.
      .filter((command) => command !== 'claude mcp add')
    expect(commands.length).toBeGreaterThanOrEqual(5)
    // The plugin commands build on each other (add, install, disable, enable): one home for all of them. Each
    // `claude mcp add` is an alternative way in: a fresh home of its own, as for a new user.
    const shared = claudeHome()
    for (const command of commands) {
      const { run } = command.startsWith('claude mcp add') ? claudeHome() : shared
      const ran = await run(command.replaceAll('/path/to/duo', ROOT))
      expect({ command, code: ran.code, out: ran.code === 0 ? '' : ran.out }).toEqual({ command, code: 0, out: '' })
    }
  }, CLI_TIMEOUT_MS)
})
