// Headless Chromium (Debian's, driven by playwright-core) for the console's tests, its screenshot and the bench.
import { existsSync } from 'node:fs'
import { type Browser, chromium } from 'playwright-core'

export const CHROMIUM = process.env.DUO_CHROMIUM ?? '/usr/bin/chromium'

/** Flags for a quiet headless run as root on a machine without a GPU or internet (see TOOLCHAIN.md). */
const FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
]

export const haveChromium = () => existsSync(CHROMIUM)

/** `extraArgs`: more Chromium flags, e.g. `--host-resolver-rules=MAP rebind.test 127.0.0.1` to play DNS rebinding. */
export function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  if (!haveChromium()) throw new Error(`no Chromium at ${CHROMIUM}: install it with \`apt-get install -y chromium\` (or set DUO_CHROMIUM)`)
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...FLAGS, ...extraArgs] })
}
