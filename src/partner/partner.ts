// One partner's session with the broker: identity, token, registration, listen position and unread messages.
import type { BrokerClient, BrokerError, BrokerResult, MessageView, PartnerView } from './broker-client.ts'
import { updateClaudeMd } from './claude-md.ts'
import type { PartnerConfig } from './config.ts'
import { advance, mergePositions, START, Unread } from './inbox.ts'
import type { ListenPosition, StateStore } from './state-file.ts'
import { brokerSwitchText } from './texts.ts'
import { plain } from './untrusted.ts'

/**
 * Whether a refusal says the broker no longer knows partner `partnerId` or its token (a restarted or
 * reset broker), so registering again can help. Decided by the broker's machine-readable `reason` and
 * the subject it names, never by the wording: a 404 about a namesake (`to: "alice"` when we are "a")
 * or about a conversation is the caller's answer, not ours to act on.
 */
export function brokerForgot(error: BrokerError, partnerId: string): boolean {
  if (error.kind !== 'rejected') return false
  const body = typeof error.body === 'object' && error.body !== null ? (error.body as { reason?: unknown; partnerId?: unknown }) : {}
  if (error.status === 404) {
    if (body.reason !== undefined) return body.reason === 'unknown_partner' && body.partnerId === partnerId
    // A broker from before `reason`: only its exact sentence about us, the id within its quotes.
    return error.message.startsWith(`unknown partner "${partnerId}"`)
  }
  // Our token is unknown (or we had none to send); a 401 without a reason comes from an older broker.
  if (error.status === 401) return body.reason === undefined || body.reason === 'token_invalid' || body.reason === 'token_required'
  return false
}

export class Partner {
  readonly id: string
  /** This process's own id: the broker counts sessions by it, and keeps the partner online while another one lives. */
  readonly sessionId = crypto.randomUUID()
  readonly unread = new Unread()
  name: string
  token: string | undefined
  position: ListenPosition
  /** The broker's copy of this partner, as of the last registration. */
  view: PartnerView | undefined
  notificationsEnabled = true
  /** Set when the cursor had to be reset (broker database reset); `listen` says so once. */
  resetNotice: string | undefined
  /** Counts position resets and switches of log, so a follower knows what it saw belongs to another log. */
  epoch = 0
  /**
   * The broker id (the log's identity, from `/health`) that `token` and `position` belong to: undefined until
   * the first registration asks, null for a broker too old to say.
   */
  brokerId: string | null | undefined
  /** Set when the broker reached serves another log than before: the next tool answer says so, once. */
  brokerNotice: string | undefined
  /** `token` and `position` come from a by-URL entry of an older state file, not yet known to be this log's. */
  private legacy = false
  private registration: Promise<BrokerResult<PartnerView>> | undefined
  /** The model asked for a new name: the next registration renames even while another session is live. */
  private renaming = false
  private registered = false
  private resolveFirstRegistration!: () => void
  /** Settles when this partner first registered successfully (it may take several attempts). */
  readonly firstRegistration = new Promise<void>((resolve) => {
    this.resolveFirstRegistration = resolve
  })
  private claudeMdTimer: ReturnType<typeof setTimeout> | undefined

  constructor(
    readonly config: PartnerConfig,
    readonly client: BrokerClient,
    private readonly store: StateStore,
  ) {
    this.id = config.partnerId
    this.name = config.partnerName
    // Until the broker says which log it serves: the state of the log this project last reached at this URL.
    const last = store.lastBrokerId()
    const { state, legacy } = store.load(last ?? null)
    this.token = state.token
    this.position = state.position
    this.legacy = legacy || last === undefined
    this.unread.onChange(() => this.scheduleClaudeMd())
  }

  /** Registers (again) with the broker; on the first registration of this id the broker hands out a token we keep. */
  register(name?: string): Promise<BrokerResult<PartnerView>> {
    if (name && name !== this.name) {
      this.name = name
      this.renaming = true
      // A registration in flight (the start-up one, in the background) still carries the old name: register after it.
      if (this.registration) return this.registration.then(() => this.register())
    }
    // Concurrent callers (start-up, a tool, the follower) share one request.
    this.registration ??= this.doRegister().finally(() => {
      this.registration = undefined
    })
    return this.registration
  }

  /** Registers unless already done; every broker call goes through here first. */
  async ensureRegistered(): Promise<BrokerResult<PartnerView | undefined>> {
    if (this.registered) return { ok: true, value: this.view }
    return this.register()
  }

  /** Marks the registration stale (the broker restarted or forgot us): the next call registers again. */
  forgetRegistration(): void {
    this.registered = false
  }

  /**
   * Runs one broker call as this partner. When the broker no longer knows us or our token (see
   * brokerForgot: its database was reset, or it is another broker), registers again and retries once.
   */
  async call<T>(fn: () => Promise<BrokerResult<T>>): Promise<BrokerResult<T>> {
    const registered = await this.ensureRegistered()
    if (!registered.ok) return registered
    const first = await fn()
    if (first.ok || !brokerForgot(first.error, this.id)) return first
    this.registered = false
    const again = await this.register()
    return again.ok ? fn() : first
  }

  /** Records that everything up to `cursor` (in `conversationId` only, when given) reached the model. */
  commit(cursor: number, conversationId?: string): void {
    const next = advance(this.position, cursor, conversationId)
    if (next !== this.position) {
      this.position = next
      this.save()
    }
    this.unread.prune(this.position)
    // Best effort: the broker's read positions feed unread counts; the next listen acknowledges anyway.
    void this.client.ack(this.id, cursor, conversationId).then((r) => {
      if (!r.ok) console.error(`duo partner: could not acknowledge up to #${cursor}: ${r.error.message}`)
    })
  }

  /**
   * Takes in what another process of this partner (a second session in the project) recorded as delivered:
   * the sessions of one project share one inbox, so a message handed to one is not offered to the other.
   */
  syncPosition(): void {
    // Only once it is known which log this is: positions of another log mean nothing here.
    if (this.brokerId === undefined) return
    const { state: saved } = this.store.load(this.brokerId)
    if (saved.token !== this.token) return
    const next = mergePositions(this.position, saved.position)
    if (next !== this.position) {
      this.position = next
      this.unread.prune(this.position)
    }
  }

  /**
   * A reply acknowledged what this session was shown in these conversations (the broker answered which):
   * they count as delivered here too, so listen does not offer them again and the unread notice drops them.
   */
  acknowledged(marks: Array<{ conversationId: string; seq: number }>): void {
    let next = this.position
    for (const { conversationId, seq } of marks) next = advance(next, seq, conversationId)
    if (next === this.position) return
    this.position = next
    this.save()
    this.unread.prune(this.position)
  }

  /** The broker's log no longer reaches our cursor (its database was reset): start over from its beginning. */
  resetPosition(reason: string): void {
    console.error(`duo partner: resetting the listen cursor (was #${this.position.cursor}): ${reason}`)
    this.resetNotice = `${reason} Your listen cursor was reset to the start of the broker's log, so you may see messages again that you saw before.`
    this.position = START
    this.epoch++
    this.unread.clear()
    this.save({ reset: true })
  }

  setNotifications(enabled: boolean): void {
    this.notificationsEnabled = enabled
    this.scheduleClaudeMd()
  }

  /**
   * What the top of the next tool answer says: that the broker now serves another log (once), and one line
   * announcing unread messages (none when there are none or notifications are off).
   */
  notice(): string | undefined {
    const switched = this.brokerNotice
    this.brokerNotice = undefined
    const unread = this.unreadNotice()
    return switched && unread ? `${switched}\n\n${unread}` : (switched ?? unread)
  }

  private unreadNotice(): string | undefined {
    if (!this.notificationsEnabled || this.unread.size === 0) return undefined
    const groups = new Map<string, { conversation: string; from: Set<string>; count: number }>()
    for (const m of this.unread.list()) {
      const g = groups.get(m.conversation_id) ?? { conversation: m.conversation_id, from: new Set(), count: 0 }
      g.from.add(m.from_id)
      g.count++
      groups.set(m.conversation_id, g)
    }
    const parts = [...groups.values()].map((g) => `${g.count} from ${[...g.from].map(plain).join(', ')} in ${plain(g.conversation)}`)
    const total = this.unread.size === 1 ? '1 unread message' : `${this.unread.size} unread messages`
    return `[Duo] You have ${total} (${parts.join('; ')}). Call listen to read them.`
  }

  /** Adds a message seen arriving; true when it is new (not delivered, not seen before). */
  noteArrival(message: MessageView): boolean {
    return this.unread.add(this.position, message)
  }

  async unregister(): Promise<void> {
    if (this.claudeMdTimer) this.syncClaudeMd()
    // Even when a broker restart made the registration stale: going offline there is still right.
    if (!this.view) return
    this.registered = false
    const r = await this.client.unregister(this.id, this.sessionId)
    if (!r.ok) console.error(`duo partner: could not unregister: ${r.error.message}`)
  }

  /** Writes the CLAUDE.md section now (normally coalesced by a short timer). */
  syncClaudeMd(): void {
    clearTimeout(this.claudeMdTimer)
    this.claudeMdTimer = undefined
    try {
      // Off (DUO_CLAUDE_MD=off) still removes a section an earlier run left, and adds none.
      const listed = this.notificationsEnabled && this.config.claudeMd !== false ? this.unread.list() : []
      updateClaudeMd(this.config.projectDir, listed)
    } catch (error) {
      console.error(`duo partner: could not update CLAUDE.md: ${(error as Error).message}`)
    }
  }

  private scheduleClaudeMd(): void {
    this.claudeMdTimer ??= setTimeout(() => this.syncClaudeMd(), 30)
  }

  /**
   * Asks the broker which log it serves, and moves to that log's token and position when it is not the one
   * held (another broker at this address, or a reset database): what is held for the first log is kept, and
   * the model is told. Returns whether the log changed. A broker too old to say keeps the by-URL state.
   */
  async identifyBroker(): Promise<BrokerResult<boolean>> {
    const health = await this.client.health()
    if (!health.ok) return health
    const id = health.value.broker_id ?? null
    if (id === this.brokerId) return { ok: true, value: false }
    const before = this.brokerId === undefined ? this.store.lastBrokerId() : (this.brokerId ?? undefined)
    const { state, legacy } = this.store.load(id)
    const changed = before !== undefined && id !== null && before !== id
    if (this.brokerId !== undefined || changed) {
      // What was seen belongs to the other log.
      this.epoch++
      this.unread.clear()
    }
    this.brokerId = id
    this.token = state.token
    this.position = state.position
    this.legacy = legacy
    this.registered = false
    if (changed) {
      this.brokerNotice = brokerSwitchText(this.client.baseUrl, id, before, this.id)
      console.error(`duo partner: the broker at ${this.client.baseUrl} serves log ${id}, not ${before} as before; its token and cursor are kept apart`)
    }
    return { ok: true, value: changed }
  }

  /** Saves token and position; unless `reset`, first takes in what another session of this partner saved meanwhile. */
  private save(options: { dropLegacy?: boolean; reset?: boolean } = {}): void {
    if (!options.reset) this.syncPosition()
    try {
      this.store.save(this.brokerId ?? null, { token: this.token, position: this.position }, options)
    } catch (error) {
      console.error(`duo partner: could not save ${this.store.path}: ${(error as Error).message}`)
    }
  }

  private async doRegister(): Promise<BrokerResult<PartnerView>> {
    // First which log this is, so that a token is only ever sent to the log that issued it.
    const identified = await this.identifyBroker()
    if (!identified.ok) return identified
    const rename = this.renaming
    this.renaming = false
    const body = { partnerId: this.id, name: this.name, projectPath: this.config.projectDir, ...(rename ? { rename: true } : {}) }
    let result = await this.client.register(body, this.token ?? null)
    let freshStart = false
    if (!result.ok && result.error.kind === 'rejected' && result.error.status === 401 && this.token) {
      // The broker does not know our token: its database was reset, or it is another broker. Try as a newcomer.
      const fresh = await this.client.register(body, null)
      if (fresh.ok) {
        result = fresh
        freshStart = true
      }
    }
    if (!result.ok) {
      this.renaming ||= rename
      return result
    }
    const { partner, token } = result.value
    if (this.legacy && this.brokerId) {
      // A by-URL entry of an older file: this log took its token, so it is this log's (moved under its id);
      // or it did not, and the entry belongs to another log: left where it is, and this log starts afresh.
      this.legacy = false
      // A new token for an id the presented one did not open (the id is new to this log) is not acceptance either.
      if (freshStart || (token !== undefined && token !== this.token)) {
        this.position = START
        this.token = token
        this.save()
      } else {
        if (token) this.token = token
        this.save({ dropLegacy: true })
      }
    } else if (token && this.token && token !== this.token && this.position.cursor > 0) {
      // A new token for an id we held means the broker lost us, and with us the log our cursor points into.
      this.token = token
      this.resetPosition('The broker no longer knew this partner (its database was probably reset).')
    } else if (token) {
      this.token = token
      this.save()
    }
    this.view = partner
    this.notificationsEnabled = partner.notifications_enabled ?? true
    this.registered = true
    this.resolveFirstRegistration()
    this.scheduleClaudeMd()
    return { ok: true, value: partner }
  }
}
