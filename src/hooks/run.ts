// Duo's Claude Code hooks: one command, acting as the project's partner, for SessionStart, UserPromptSubmit and Stop.
import { z } from 'zod'
import { createBrokerClient, type BrokerClient } from '../partner/broker-client.ts'
import { loadPartnerConfig, type PartnerConfig } from '../partner/config.ts'
import { openStateStore } from '../partner/state-file.ts'
import { CONTEXT_MAX_CHARS, renderMessages, shownMarks } from './render.ts'
import { waitAndWake } from './wake.ts'

/** The fields of Claude Code's hook input that Duo reads; the rest is ignored. */
export const HookInput = z.object({
  session_id: z.string().min(1).max(200),
  cwd: z.string().min(1),
  hook_event_name: z.string(),
  stop_hook_active: z.boolean().optional(),
})
export type HookInput = z.infer<typeof HookInput>

/** What the hook process does at the end: its exit code and what it writes. */
export type HookOutcome = { code: 0 | 2; stdout?: string; stderr?: string }
const quiet: HookOutcome = { code: 0 }

/** How long a hook that runs in the foreground (context) may wait for the broker, in all. */
const CONTEXT_BUDGET_MS = 1500

export type HookEnv = Record<string, string | undefined>

export type HookDeps = {
  env: HookEnv
  /** Stop's long wait is cut short by this (SIGTERM: a newer waiter of the session took over). */
  signal?: AbortSignal
  now?: () => number
}

/** The partner this hook acts as: the MCP server's configuration, identity and token, read from the same places. */
export function hookPartner(input: HookInput, env: HookEnv): { config: PartnerConfig; client: BrokerClient } | null {
  let config: PartnerConfig
  try {
    config = loadPartnerConfig(env, input.cwd)
  } catch {
    return null
  }
  // Read only: the MCP server owns the state file; a hook never writes the token or the listen cursor. Its
  // token is the one kept for the log the partner last reached at this broker URL (no extra request to ask).
  const store = openStateStore(config.projectDir, config.partnerId, config.brokerUrl, { quiet: true })
  const { state: saved } = store.load(store.lastBrokerId() ?? null)
  const client = createBrokerClient({ baseUrl: config.brokerUrls, token: () => saved.token, retryDelaysMs: [] })
  return { config, client }
}

/** Runs one hook for Claude Code's JSON input (already parsed). Never throws; every failure is a quiet exit 0. */
export async function runHook(raw: unknown, deps: HookDeps): Promise<HookOutcome> {
  const parsed = HookInput.safeParse(raw)
  if (!parsed.success) return quiet
  const input = parsed.data
  // DUO_HOOKS_OFF=Stop,UserPromptSubmit (or "all") turns hooks off one by one, from the environment or Claude Code's settings.
  const off = (deps.env.DUO_HOOKS_OFF ?? '').split(',').map((s) => s.trim().toLowerCase())
  if (off.includes('all') || off.includes(input.hook_event_name.toLowerCase())) return quiet
  const partner = hookPartner(input, deps.env)
  if (!partner) return quiet
  switch (input.hook_event_name) {
    case 'SessionStart':
    case 'UserPromptSubmit':
      return addContext(input.hook_event_name, partner.config, partner.client)
    case 'Stop':
      return waitAndWake(input, partner.config, partner.client, deps)
    default:
      return quiet
  }
}

/** SessionStart, UserPromptSubmit: the messages this session was not shown yet, as added context (surfaced). */
async function addContext(event: 'SessionStart' | 'UserPromptSubmit', config: PartnerConfig, client: BrokerClient): Promise<HookOutcome> {
  const started = Date.now()
  const unseen = await client.unseen(config.partnerId, { after: 0, waitS: 0, timeoutMs: CONTEXT_BUDGET_MS })
  if (!unseen.ok || unseen.value.messages.length === 0) return quiet
  const { messages } = unseen.value
  const n = messages.length
  const rendered = renderMessages(
    messages,
    `[Duo] You are Duo partner "${config.partnerId}". ${n === 1 ? 'A message' : `${n} messages`} from other Claude Code partners arrived that you have not seen yet.`,
    '[Duo] Answer one with the duo talk tool (conversation: the id shown in its header) if it needs an answer; replying marks what you saw there as read.',
    CONTEXT_MAX_CHARS,
  )
  const stdout = JSON.stringify({ hookSpecificOutput: { hookEventName: event, additionalContext: rendered.text } })
  const marks = shownMarks(messages, rendered.shown)
  const left = CONTEXT_BUDGET_MS - (Date.now() - started)
  // Reported before the answer is printed: Claude Code reads stdout once the process ends, so this is the last moment.
  if (marks.length > 0 && left > 0) await client.report(config.partnerId, 'surfaced', marks, Math.min(left, 500))
  return { code: 0, stdout }
}
