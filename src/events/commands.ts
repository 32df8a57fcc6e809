// Commands: read the views, decide, append — one transaction each, committed together with its neighbours.
import { type Command, type Decision, type DecisionView, decide, type Result, type Rules } from './decide.ts'
import type { EventLog } from './log.ts'
import type { Envelope } from './schema.ts'

export type Executed = {
  decision: Decision
  appended: Envelope[]
  /** talk: the other current members of the conversation, and those of them with a waiting listener. */
  recipients?: string[]
  notified?: string[]
}

export type CommandDeps = {
  log: EventLog
  view: DecisionView
  rules: Rules
  /** Whether a partner has a waiting listener right now (for talk's `notified`/`queued`). */
  listening?: (partnerId: string) => boolean
}

export function createCommands({ log, view, rules, listening = () => false }: CommandDeps) {
  return {
    /** Decides and appends atomically; resolves after the events are durable (or with the refusal). */
    execute(command: Command): Promise<Result<Executed>> {
      return log.transact((): Result<Executed> => {
        const result = decide(command, view, rules)
        if (!result.ok) return result
        const appended = result.value.events.length > 0 ? log.append(result.value.events) : []
        const executed: Executed = { decision: result.value, appended }
        if (command.kind === 'talk' && result.value.conversationId !== undefined) {
          executed.recipients = view.members(result.value.conversationId).filter((id) => id !== command.fromId)
          executed.notified = executed.recipients.filter(listening)
        }
        return { ok: true, value: executed }
      })
    },
  }
}
export type Commands = ReturnType<typeof createCommands>
