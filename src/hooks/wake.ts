// The Stop hook's waiter: parks on the broker until a message arrives, then wakes the idle session with it (exit 2).
import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { BrokerClient } from '../partner/broker-client.ts'
import type { PartnerConfig } from '../partner/config.ts'
import { DUO_DIR, ensureDuoDir } from '../partner/state-file.ts'
import { renderMessages, shownMarks } from './render.ts'
import type { HookDeps, HookInput, HookOutcome } from './run.ts'

/** Default longest wait of one Stop hook, in seconds: under the `timeout` hooks.json gives it, so it ends by itself. */
export const WAKE_WAIT_S_DEFAULT = 3000
/** Wake-ups in a row without a turn of the user's, after which a Stop that a hook started no longer waits. */
export const WAKE_CHAIN_MAX_DEFAULT = 20
/** The stderr of an exit-2 hook becomes a reminder for the model; kept well under Claude Code's context budget. */
const WAKE_MAX_CHARS = 8000
/** The first, short ask: a broker that is down or a project that is not registered ends the hook at once. */
const FIRST_ASK_MS = 1500

type WaiterState = { pid?: number; wokeUpTo: number; chain: number }

/** One file per Claude Code session: its waiter's pid, the last seq it woke the session for, the chain count. */
export function waiterFile(config: PartnerConfig, sessionId: string): string {
  const key = sessionId.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 100)
  return join(config.projectDir, DUO_DIR, `wake-${config.partnerId}-${key}.json`)
}

function load(path: string): WaiterState {
  try {
    const s = JSON.parse(readFileSync(path, 'utf8')) as Partial<WaiterState>
    return {
      pid: typeof s.pid === 'number' ? s.pid : undefined,
      wokeUpTo: typeof s.wokeUpTo === 'number' ? s.wokeUpTo : 0,
      chain: typeof s.chain === 'number' ? s.chain : 0,
    }
  } catch {
    return { wokeUpTo: 0, chain: 0 }
  }
}

function save(path: string, state: WaiterState): void {
  const tmp = `${path}.${process.pid}.tmp`
  writeFileSync(tmp, `${JSON.stringify(state)}\n`, { mode: 0o600 })
  renameSync(tmp, path)
}

/** Whether `pid` is a Duo hook process (and not a process that merely reused the number since). */
function isHookProcess(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('src/hooks/index.ts')
  } catch {
    // No /proc (macOS): ask ps.
    const ps = Bun.spawnSync(['ps', '-p', String(pid), '-o', 'command='], { stdout: 'pipe', stderr: 'ignore' })
    return ps.exitCode === 0 && ps.stdout.toString().includes('src/hooks/index.ts')
  }
}

const envNumber = (value: string | undefined, fallback: number, max: number) => {
  const n = Number(value)
  return value !== undefined && value.trim() !== '' && Number.isFinite(n) && n >= 0 ? Math.min(n, max) : fallback
}

/**
 * Stop, declared with `asyncRewake`: Claude Code runs it in the background and, when it exits with code 2,
 * hands its stderr to the model as a reminder, waking an idle session. The rules:
 * - one waiter per session: a new one ends the previous one (SIGTERM), which exits quietly;
 * - never twice for one message: it wakes only for messages past its session's last wake-up and past what
 *   the session was shown in any other way (the broker's pushed, surfaced and read positions), and reports
 *   what it woke for as pushed before exiting;
 * - `stop_hook_active` (this turn was itself started by a Stop hook): allowed while fewer than
 *   DUO_WAKE_CHAIN_MAX wake-ups happened in a row without a turn of the user's, so two agents cannot keep
 *   each other busy forever; an ordinary stop starts the count again;
 * - it ends by itself after DUO_WAKE_WAIT_S seconds, quietly.
 */
export async function waitAndWake(input: HookInput, config: PartnerConfig, client: BrokerClient, deps: HookDeps): Promise<HookOutcome> {
  const now = deps.now ?? Date.now
  const waitS = envNumber(deps.env.DUO_WAKE_WAIT_S, WAKE_WAIT_S_DEFAULT, 3600)
  const chainMax = envNumber(deps.env.DUO_WAKE_CHAIN_MAX, WAKE_CHAIN_MAX_DEFAULT, 10_000)
  const deadline = now() + waitS * 1000

  // Quick first: the broker down, the project unknown to it or a bad token end the hook here, at once.
  const first = await client.unseen(config.partnerId, { after: 0, waitS: 0, timeoutMs: FIRST_ASK_MS }, deps.signal)
  if (!first.ok) return { code: 0 }

  let path: string
  try {
    ensureDuoDir(config.projectDir)
    path = waiterFile(config, input.session_id)
  } catch {
    return { code: 0 }
  }
  const state = load(path)
  if (input.stop_hook_active === true) {
    if (state.chain >= chainMax) return { code: 0 }
  } else state.chain = 0
  if (state.pid !== undefined && state.pid !== process.pid && isHookProcess(state.pid)) {
    try {
      process.kill(state.pid, 'SIGTERM')
    } catch {}
  }
  state.pid = process.pid
  save(path, state)

  try {
    let found = first.value.messages.filter((m) => m.seq > state.wokeUpTo)
    while (found.length === 0) {
      const left = deadline - now()
      if (left <= 0 || deps.signal?.aborted) return { code: 0 }
      const answer = await client.unseen(config.partnerId, { after: state.wokeUpTo, waitS: Math.ceil(left / 1000) }, deps.signal)
      if (!answer.ok) return { code: 0 }
      found = answer.value.messages.filter((m) => m.seq > state.wokeUpTo)
    }
    const n = found.length
    const rendered = renderMessages(
      found,
      `[Duo] ${n === 1 ? 'A message' : `${n} messages`} from other Claude Code partners arrived for you (Duo partner "${config.partnerId}") while this session was idle.`,
      '[Duo] If it needs an answer, reply with the duo talk tool (conversation: the id in its header); replying marks what you saw there as read.',
      WAKE_MAX_CHARS,
    )
    const marks = shownMarks(found, rendered.shown)
    if (marks.length > 0) await client.report(config.partnerId, 'pushed', marks, 1000)
    // Our own record too: even if that report was lost, this session is never woken for these again.
    const latest = load(path)
    save(path, {
      pid: latest.pid === process.pid ? undefined : latest.pid,
      wokeUpTo: Math.max(latest.wokeUpTo, ...found.map((m) => m.seq)),
      chain: state.chain + 1,
    })
    return { code: 2, stderr: rendered.text }
  } finally {
    const latest = load(path)
    if (latest.pid === process.pid) save(path, { ...latest, pid: undefined })
  }
}
