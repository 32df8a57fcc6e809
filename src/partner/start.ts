// Wires one running partner: broker client, session, MCP server on a transport, and the background follower.
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js'
import type { ServerNotification } from '@modelcontextprotocol/sdk/types.js'
import { createBrokerClient, type MessageView } from './broker-client.ts'
import type { PartnerConfig } from './config.ts'
import { DeliveryTracker } from './delivery.ts'
import { type Follower, startFollower } from './follower.ts'
import { Partner } from './partner.ts'
import { buildPartnerServer, CHANNEL_METHOD, channelParams } from './server.ts'
import { ensureDuoDir, openStateStore } from './state-file.ts'
import { brokerDownText } from './texts.ts'

export type RunningPartner = { partner: Partner; server: McpServer; follower: Follower; stop(): Promise<void> }

export type StartOptions = {
  config: PartnerConfig
  transport: Transport
  fetch?: typeof fetch
  /** Follower reconnection pauses; small in tests. */
  backoffMs?: { min: number; max: number }
}

export async function startPartner({ config, transport, fetch, backoffMs }: StartOptions): Promise<RunningPartner> {
  ensureDuoDir(config.projectDir)
  const store = openStateStore(config.projectDir, config.partnerId, config.brokerUrl)
  let partner: Partner | undefined
  const client = createBrokerClient({ baseUrl: config.brokerUrl, token: () => partner?.token, fetch })
  partner = new Partner(config, client, store)
  const self = partner
  const deliveries = new DeliveryTracker()
  const server = buildPartnerServer(self, deliveries)

  // Claude Code drops what arrives before the handshake ends: hold pushes until the client is initialized.
  let initialized = false
  const held: MessageView[] = []
  const push = (message: MessageView) => {
    if (!initialized) {
      held.push(message)
      return
    }
    const notification = { method: CHANNEL_METHOD, params: channelParams(message) } as unknown as ServerNotification
    server.server.notification(notification).catch((error: Error) => {
      console.error(`duo partner: could not push message #${message.seq}: ${error.message}`)
    })
  }
  server.server.oninitialized = () => {
    initialized = true
    for (const message of held.splice(0)) push(message)
  }

  // Registered before the client is served, so others see this partner as soon as its tools exist.
  // A broker that is down does not stop the start: the tools then explain, and the follower retries.
  const registered = await self.register()
  if (registered.ok) console.error(`duo partner: registered as "${self.id}" with ${config.brokerUrl}`)
  else if (registered.error.kind === 'unreachable') console.error(`duo partner: ${brokerDownText(config.brokerUrl, registered.error.message, 'register')}`)
  else console.error(`duo partner: registration refused: ${registered.error.message}`)
  await server.connect(deliveries.wrap(transport))

  const follower = startFollower(self, {
    onMessage: (message) => {
      if (self.noteArrival(message)) push(message)
    },
    minBackoffMs: backoffMs?.min,
    maxBackoffMs: backoffMs?.max,
  })

  let stopped: Promise<void> | undefined
  return {
    partner: self,
    server,
    follower,
    stop: () =>
      (stopped ??= (async () => {
        await follower.stop()
        await self.unregister()
        await server.close().catch(() => {})
      })()),
  }
}
