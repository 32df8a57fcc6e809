// `bun run broker`: reads the configuration, starts the broker, stops cleanly on SIGINT/SIGTERM.
import { lookup } from 'node:dns/promises'
import { ConfigError, configFromEnv } from './http/config.ts'
import { LogInUseError } from './broker-lock.ts'
import { startBroker } from './http/server.ts'
import { isPostgresUrl, redactUrl } from './pg/schema.ts'

function fail(message: string): never {
  console.error(`duo broker: ${message}`)
  process.exit(2)
}

let config
try {
  config = configFromEnv()
} catch (error) {
  if (error instanceof ConfigError) fail(error.message)
  throw error
}

let broker
try {
  broker = await startBroker(config)
} catch (error) {
  const message = error instanceof Error ? error.message : String(error)
  if (error instanceof LogInUseError) fail(message)
  // Decide by the error's code, not its text: Bun's own "Is port N in use?" also comes for a bad host.
  const code = (error as { code?: unknown })?.code
  if (code === 'EADDRINUSE') {
    // Elysia reports a host that does not resolve as a port in use too: tell them apart.
    const resolves = await lookup(config.host).then(() => true, () => false)
    if (!resolves) fail(`BROKER_HOST "${config.host}" does not resolve to an address of this machine`)
    fail(`BROKER_PORT ${config.port} on ${config.host} is already in use`)
  }
  if (code === 'EINVAL' || code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND')
    fail(`BROKER_HOST "${config.host}" is not an address of this machine (${code})`)
  if (code === 'EACCES' && (error as { syscall?: unknown }).syscall === 'listen')
    fail(`BROKER_PORT ${config.port}: permission denied (ports below 1024 need privileges)`)
  // mkdir of the database's folder fails with ENOENT/EEXIST (e.g. under /proc, or below a file): still DUO_DB's fault.
  if (isPostgresUrl(config.dbPath)) fail(`DUO_DB ${redactUrl(config.dbPath)}: ${message}`)
  if (/unable to open|SQLITE_CANTOPEN|EACCES|EROFS|ENOTDIR|ENOENT|EEXIST|permission denied|read-only/i.test(message))
    fail(`DUO_DB "${config.dbPath}" cannot be opened for writing (${message})`)
  fail(message)
}

const db = isPostgresUrl(config.dbPath) ? `${redactUrl(config.dbPath)} (shared)` : `${config.dbPath}, sync: ${config.sync}`
console.log(`duo broker listening on ${broker.url} (auth: ${config.auth}, db: ${db}, broker id: ${broker.brokerId})`)
if (broker.warning) console.error(`duo broker: warning: ${broker.warning}`)
if (broker.adminTokenInDatabase) console.log('operator token: kept in the shared database (SELECT token FROM duo_operator)')
else if (broker.adminTokenFile) console.log(`operator token file: ${broker.adminTokenFile}`)
else if (!config.adminToken) console.log(`operator token (this run only): ${broker.adminToken}`)
console.log(`API documentation: ${broker.url}/docs`)

let stopping = false
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, async () => {
    if (stopping) return
    stopping = true
    console.log(`duo broker: ${signal}, answering listeners and closing the database`)
    await broker.stop()
    process.exit(0)
  })
}
