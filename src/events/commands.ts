// Commands: read the views, decide, append — one transaction each, committed together with its neighbours.
import { type Command, type Decision, type DecisionView, decide, type Result, type Rules } from './decide.ts'
import type { EventLog } from './log.ts'
import type { Envelope } from './schema.ts'

/** A command's outcome once durable: its decision, the appended envelopes, and for talk who it reaches. */
export type Executed<K extends Command['kind'] = Command['kind']> = {
  decision: Decision<K>
  appended: Envelope[]
} & (K extends 'talk'
  ? {
      /** The other current members of the conversation, and those of them with a waiting listener. */
      recipients: string[]
      notified: string[]
    }
  : {})

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
    execute<C extends Command>(command: C): Promise<Result<Executed<C['kind']>>> {
      return log.transact((): Result<Executed<C['kind']>> => {
        const result = decide(command, view, rules)
        if (!result.ok) return result
        const appended = result.value.events.length > 0 ? log.append(result.value.events) : []
        if (command.kind !== 'talk') return { ok: true, value: { decision: result.value, appended } as Executed<C['kind']> }
        const { conversationId } = result.value as Decision<'talk'>
        const recipients = view.members(conversationId).filter((id) => id !== command.fromId)
        const value = { decision: result.value, appended, recipients, notified: recipients.filter(listening) }
        return { ok: true, value: value as Executed<C['kind']> }
      })
    },
  }
}
export type Commands = ReturnType<typeof createCommands>
