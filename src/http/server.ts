// Starts and stops a broker: store, hub, app and server wired together; used by `bun run broker` and tests.
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { openStore } from '../store.ts'
import { loadAdminToken } from './auth.ts'
import type { BrokerConfig } from './config.ts'
import { buildApp } from './app.ts'
import { createHub, type Hub } from './hub.ts'

export type RunningBroker = {
  url: string
  port: number
  adminToken: string
  adminTokenFile: string | null
  /** Answers waiting listeners, stops listening, closes the database. */
  stop(): Promise<void>
}

const STOP_GRACE_MS = 3000

const randomSuffix = () => Math.random().toString(36).slice(2, 8)

export async function startBroker(config: BrokerConfig, now: () => Date = () => new Date()): Promise<RunningBroker> {
  if (config.dbPath !== ':memory:') mkdirSync(dirname(config.dbPath), { recursive: true })
  let hub: Hub | undefined
  const store = openStore({
    path: config.dbPath,
    sync: config.sync,
    now,
    rules: { maxMessageBytes: config.maxMessageBytes },
    listening: (id) => hub?.isListening(id) ?? false,
  })
  hub = createHub({ members: store.views.conversations.memberIds, lastSeq: store.log.lastSeq })
  store.log.onCommit(hub.dispatch)
  const admin = loadAdminToken(config.dbPath, config.adminToken)
  const shutdown = new AbortController()
  const app = buildApp({
    store,
    hub,
    config,
    adminToken: admin.token,
    now,
    newGroupId: () => `group_${now().getTime()}_${randomSuffix()}`,
    startedAt: now().getTime(),
    shutdown: shutdown.signal,
  })
  app.listen({
    hostname: config.host,
    port: config.port,
    reusePort: false,
    // Long enough for slow clients; long-polls and streams switch the idle timer off for themselves.
    idleTimeout: 120,
    // No cap of Bun's own: its refusal is a bare 413. The app answers declared sizes in JSON unread and cuts
    // streamed bodies at the limit; Bun reads a body only as fast as something consumes it (checked: no buffering).
    maxRequestBodySize: Number.MAX_SAFE_INTEGER,
  })
  const server = app.server!
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${server.port}`
  return {
    url,
    port: server.port!,
    adminToken: admin.token,
    adminTokenFile: admin.file,
    async stop() {
      // Parked long-polls answer and streams end now, so stopping never waits out a client's `wait`.
      shutdown.abort()
      // A client that never finishes sending its request would hold a graceful stop open until the idle
      // timeout: in-flight requests get a few seconds, then what is left is closed.
      const force = setTimeout(() => void server.stop(true), STOP_GRACE_MS)
      await server.stop(false)
      clearTimeout(force)
      await store.close()
    },
  }
}
