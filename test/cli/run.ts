// Test helpers for the CLI tools: run one to completion, or follow a long-running one's output line by line.
import { join } from 'node:path'

export const ROOT = join(import.meta.dir, '../..')

/** Runs `bun <script> ...args` from the repository root and collects its output. */
export function runTool(script: string, args: string[], env: Record<string, string> = {}) {
  const proc = Bun.spawnSync([process.execPath, script, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdout: 'pipe',
    stderr: 'pipe',
  })
  return { exitCode: proc.exitCode, stdout: proc.stdout.toString(), stderr: proc.stderr.toString() }
}

/** Fills a new log file with `events` realistic events through the generator. */
export function generateLog(path: string, events: number): void {
  const run = runTool('src/cli/generate.ts', ['--db', path, '--events', String(events)])
  if (run.exitCode !== 0) throw new Error(`generate failed: ${run.stderr}`)
}

/** A running tool whose stdout is read as it comes; `waitFor` resolves once a line matches, or fails after `ms`. */
export function follow(script: string, args: string[]) {
  const proc = Bun.spawn([process.execPath, script, ...args], { cwd: ROOT, stdout: 'pipe', stderr: 'pipe' })
  const lines: string[] = []
  let partial = ''
  let wake = () => {}
  const reading = (async () => {
    const decoder = new TextDecoder()
    for await (const chunk of proc.stdout) {
      const text = partial + decoder.decode(chunk, { stream: true })
      const parts = text.split('\n')
      partial = parts.pop()!
      lines.push(...parts)
      wake()
    }
  })()
  return {
    proc,
    lines,
    /** The text after the last newline: a torn line would show here. */
    partial: () => partial,
    async waitFor(match: (line: string) => boolean, ms = 10_000): Promise<void> {
      const deadline = Date.now() + ms
      while (!lines.some(match)) {
        if (Date.now() > deadline) throw new Error(`no matching line within ${ms} ms; last: ${lines.at(-1)}`)
        await Promise.race([new Promise<void>((r) => (wake = r)), Bun.sleep(100)])
      }
    },
    /** Waits for the process to end (after a signal); its stdout is read to the end. */
    async ended(): Promise<number> {
      const code = await proc.exited
      await reading
      return code
    },
  }
}
