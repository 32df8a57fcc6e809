// Entry of Duo's Claude Code hooks (`bun src/hooks/index.ts`): the hook JSON on stdin, the answer in exit code and output.
import { runHook } from './run.ts'

/** Claude Code's hook input is small; anything bigger, or stdin left open, is not a hook call. */
const STDIN_MAX_BYTES = 1024 * 1024
const STDIN_WAIT_MS = 1000

async function readStdin(): Promise<unknown> {
  const chunks: Uint8Array[] = []
  let size = 0
  const reader = Bun.stdin.stream().getReader()
  const timer = setTimeout(() => void reader.cancel().catch(() => {}), STDIN_WAIT_MS)
  try {
    for (;;) {
      const { value, done } = await reader.read()
      if (done) break
      size += value.byteLength
      if (size > STDIN_MAX_BYTES) return undefined
      chunks.push(value)
    }
  } catch {
    return undefined
  } finally {
    clearTimeout(timer)
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch {
    return undefined
  }
}

// A newer Stop waiter of the same session ends this one: quietly, with nothing to say.
process.on('SIGTERM', () => process.exit(0))
process.on('SIGINT', () => process.exit(0))

let outcome: Awaited<ReturnType<typeof runHook>>
try {
  outcome = await runHook(await readStdin(), { env: process.env })
} catch {
  // A hook never harms the session: whatever went wrong, it ends quietly.
  outcome = { code: 0 }
}
// Written out in full before exiting: Claude Code reads the output once the process has ended.
if (outcome.stdout) await Bun.write(Bun.stdout, outcome.stdout)
if (outcome.stderr) await Bun.write(Bun.stderr, outcome.stderr)
process.exit(outcome.code)
