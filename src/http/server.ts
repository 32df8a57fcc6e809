// Starts and stops a broker: store, hub, app and server wired together; used by `bun run broker` and tests.
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { isPostgresUrl } from '../pg/schema.ts'
import { shareListeners, type SharedListeners } from '../pg/presence.ts'
import { sharedSessions } from '../pg/sessions.ts'
import { loadSharedAdminToken, openPgStore, type PgStore } from '../pg/store.ts'
import { lockLogFile } from '../broker-lock.ts'
import { openStore, prepareLogFile, type Store } from '../store.ts'
import { loadAdminToken } from './auth.ts'
import type { BrokerConfig } from './config.ts'
import { buildApp } from './app.ts'
import { createRateLimiter } from './rate-limits.ts'
import { createHub, type Hub } from './hub.ts'
import { createSendBudget } from './paced.ts'

export type RunningBroker = {
  url: string
  port: number
  adminToken: string
  adminTokenFile: string | null
  /** The operator token is kept in the shared PostgreSQL database (DUO_DB=postgres://…, no DUO_ADMIN_TOKEN). */
  adminTokenInDatabase: boolean
  /** Long-polls and streams parked right now, waiting for a commit (tests wait on it instead of sleeping). */
  parked(): number
  /** The log's identity (see openEventLog), shown by /health. */
  brokerId: string
  /** Set when the database's folder lets other users in (the files themselves are 0600). */
  warning?: string
  /** Answers waiting listeners, stops listening, closes the database. */
  stop(): Promise<void>
}

const STOP_GRACE_MS = 3000

const randomSuffix = () => Math.random().toString(36).slice(2, 8)

export async function startBroker(config: BrokerConfig, now: () => Date = () => new Date()): Promise<RunningBroker> {
  const shared = isPostgresUrl(config.dbPath)
  let warning: string | undefined
  // An SQLite file: owner-only modes, and one broker at a time (an OS lock on <db>.lock for the process lifetime).
  let unlock: (() => void) | undefined
  if (!shared && config.dbPath !== ':memory:') {
    if (prepareLogFile(config.dbPath).folderOpen)
      warning = `the folder of DUO_DB "${config.dbPath}" can be listed by other users (the database files themselves are mode 0600)`
    unlock = lockLogFile(config.dbPath)
  }
  let hub: Hub | undefined
  let presence: SharedListeners | undefined
  const activity = new Map<string, number>()
  const storeOptions = {
    now,
    rules: { maxMessageBytes: config.maxMessageBytes, maxHops: config.maxHops, maxGroupsPerPartner: config.maxGroupsPerPartner },
    listening: (id: string) => hub?.isListening(id) ?? false,
  }
  let store: Store
  let admin: { token: string; file: string | null }
  try {
    if (shared) {
      const pgStore = await openPgStore({ url: config.dbPath, pollMs: config.pgPollMs, replicaPath: config.replicaPath, ...storeOptions })
      store = pgStore
      admin = { token: await loadSharedAdminToken(pgStore.sql, config.adminToken), file: null }
      presence = shareListeners({
        sql: pgStore.sql,
        brokerId: `broker_${process.pid}_${randomSuffix()}`,
        listeningHere: () => hub?.listeningHere() ?? [],
        activeHere: () => activity,
        activeWithinMs: config.presenceTimeoutMs,
      })
    } else {
      // A restored file may come with its folder recreated and the lock file gone (rm -rf of the folder): lock again.
      const relock = () => {
        if (existsSync(`${resolve(config.dbPath)}.lock`)) return
        unlock?.()
        unlock = lockLogFile(config.dbPath)
      }
      store = openStore({ path: config.dbPath, sync: config.sync, ...storeOptions, onReopen: relock })
      admin = loadAdminToken(config.dbPath, config.adminToken)
    }
  } catch (error) {
    unlock?.()
    throw error
  }
  hub = createHub({
    members: store.views.conversations.memberIds,
    lastSeq: store.log.lastSeq,
    elsewhere: presence && (() => presence!.elsewhere()),
    onListenersChanged: presence && (() => presence!.changed()),
  })
  store.log.onCommit(hub.dispatch)
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
    limits: createRateLimiter(config.rateLimits),
    catchUp: shared ? (store as PgStore).log.catchUp : undefined,
    sharedSessions: shared ? sharedSessions((store as PgStore).sql) : undefined,
    activity,
    activeElsewhere: presence && ((id) => presence!.activeElsewhere(id)),
    sendBudget: createSendBudget(config.sendBudgetBytes),
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
    adminTokenInDatabase: shared && !config.adminToken,
    parked: () => hub.waiterCount(),
    brokerId: store.log.brokerId,
    warning,
    async stop() {
      // Parked long-polls answer and streams end now, so stopping never waits out a client's `wait`.
      shutdown.abort()
      // A client that never finishes sending its request would hold a graceful stop open until the idle
      // timeout: in-flight requests get a few seconds, then what is left is closed.
      const force = setTimeout(() => void server.stop(true), STOP_GRACE_MS)
      await server.stop(false)
      clearTimeout(force)
      await presence?.stop()
      await store.close()
      unlock?.()
    },
  }
}
