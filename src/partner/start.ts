// Wires one running partner: broker client, session, MCP server on a transport, and the background follower.
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js'
import type { ServerNotification } from '@modelcontextprotocol/sdk/types.js'
import { type BrokerResult, createBrokerClient, type MessageView, type PartnerView } from './broker-client.ts'
import type { PartnerConfig } from './config.ts'
import { DeliveryTracker } from './delivery.ts'
import { type Follower, startFollower } from './follower.ts'
import { Partner } from './partner.ts'
import { buildPartnerServer, CHANNEL_METHOD, channelParams } from './server.ts'
import { ensureDuoDir, openStateStore } from './state-file.ts'
import { brokerDownText } from './texts.ts'

export type RunningPartner = {
  partner: Partner
  server: McpServer
  follower: Follower
  /** The start-up registration, running in the background once the MCP transport is served. */
  registered: Promise<BrokerResult<PartnerView>>
  stop(): Promise<void>
}

export type StartOptions = {
  config: PartnerConfig
  transport: Transport
  fetch?: typeof fetch
  /** Follower reconnection pauses; small in tests. */
  backoffMs?: { min: number; max: number }
}

const HANDSHAKE_WAIT_MS = 5000
const REPORT_DELAY_MS = 20

/**
 * Push reports, coalesced: pushes that leave within a few milliseconds of each other cost one report, and a
 * report is a position per conversation, so a burst of messages is one event at the broker.
 */
function createPushReports(partner: Partner) {
  const marks = new Map<string, number>()
  let timer: ReturnType<typeof setTimeout> | undefined
  let sending: Promise<void> = Promise.resolve()
  const send = () => {
    timer = undefined
    if (marks.size === 0) return sending
    const batch = [...marks].map(([conversationId, seq]) => ({ conversationId, seq }))
    marks.clear()
    sending = sending.then(async () => {
      const r = await partner.client.report(partner.id, 'pushed', batch)
      if (!r.ok) console.error(`duo partner: could not report pushed messages: ${r.error.message}`)
    })
    return sending
  }
  return {
    pushed(message: MessageView): void {
      marks.set(message.conversation_id, Math.max(marks.get(message.conversation_id) ?? 0, message.seq))
      timer ??= setTimeout(send, REPORT_DELAY_MS)
    },
    flush(): Promise<void> {
      clearTimeout(timer)
      return send()
    },
  }
}

export async function startPartner({ config, transport, fetch, backoffMs }: StartOptions): Promise<RunningPartner> {
  ensureDuoDir(config.projectDir)
  const store = openStateStore(config.projectDir, config.partnerId, config.brokerUrl)
  let partner: Partner | undefined
  const client = createBrokerClient({ baseUrl: config.brokerUrls, token: () => partner?.token, fetch })
  partner = new Partner(config, client, store)
  const self = partner
  const deliveries = new DeliveryTracker()
  const server = buildPartnerServer(self, deliveries)

  // Claude Code drops what arrives before the handshake ends, and what arrives before the registration
  // could belong to a log the registration finds replaced: hold pushes until both are done.
  let initialized = false
  let registeredOnce = false
  let markInitialized!: () => void
  const handshake = new Promise<void>((resolve) => {
    markInitialized = resolve
  })
  const held: MessageView[] = []
  // Only a client that declared the `claude/channel` capability shows pushes to its model; to any other,
  // a push would be a message nobody sees, so none is sent and none is reported.
  const acceptsPushes = () => server.server.getClientCapabilities()?.experimental?.['claude/channel'] !== undefined
  const reports = createPushReports(self)
  const push = (message: MessageView) => {
    if (!initialized || !registeredOnce) {
      held.push(message)
      return
    }
    if (!acceptsPushes()) return
    const notification = { method: CHANNEL_METHOD, params: channelParams(message) } as unknown as ServerNotification
    server.server
      .notification(notification)
      .then(() => reports.pushed(message))
      .catch((error: Error) => {
        console.error(`duo partner: could not push message #${message.seq}: ${error.message}`)
      })
  }
  const flush = () => {
    if (initialized && registeredOnce) for (const message of held.splice(0)) push(message)
  }
  server.server.oninitialized = () => {
    initialized = true
    markInitialized()
    flush()
  }
  void self.firstRegistration.then(() => {
    registeredOnce = true
    flush()
  })

  // Served before registering: Claude Code gives an MCP server about 30 s to start, and a broker whose
  // packets are dropped takes longer than that to fail (10 s per attempt, 3 attempts). Every tool
  // registers first if needed (sharing this request), so serving early costs nothing; a broker that is
  // down does not stop the start either: the tools then explain, and the follower retries.
  await server.connect(deliveries.wrap(transport))
  const registered = self.register().then((result) => {
    if (result.ok) console.error(`duo partner: registered as "${self.id}" with ${config.brokerUrl}`)
    else if (result.error.kind === 'unreachable') console.error(`duo partner: ${brokerDownText(config.brokerUrl, result.error.message, 'register')}`)
    else console.error(`duo partner: registration refused: ${result.error.message}`)
    return result
  })

  const follower = startFollower(self, {
    onMessage: (message) => {
      if (self.noteArrival(message)) push(message)
    },
    minBackoffMs: backoffMs?.min,
    maxBackoffMs: backoffMs?.max,
    // The broker learns from the stream whether this session takes pushes: asked once the client said what it
    // supports (or after a few seconds for a client that never finishes the handshake).
    session: async () => {
      await Promise.race([handshake, Bun.sleep(HANDSHAKE_WAIT_MS)])
      return { kind: acceptsPushes() ? 'push' : 'connected', id: self.sessionId }
    },
  })

  let stopped: Promise<void> | undefined
  return {
    partner: self,
    server,
    follower,
    registered,
    stop: () =>
      (stopped ??= (async () => {
        await follower.stop()
        await reports.flush()
        // A start-up registration that completed after the unregister would leave us online: let it finish, briefly.
        await Promise.race([registered, Bun.sleep(1000)])
        await self.unregister()
        await server.close().catch(() => {})
      })()),
  }
}
