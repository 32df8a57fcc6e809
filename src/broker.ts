// `bun run broker`: reads the configuration, starts the broker, stops cleanly on SIGINT/SIGTERM.
import { ConfigError, configFromEnv } from './http/config.ts'
import { startBroker } from './http/server.ts'

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
  if (/EADDRINUSE|address already in use|in use/i.test(message))
    fail(`BROKER_PORT ${config.port} on ${config.host} is already in use`)
  if (/EACCES|permission/i.test(message) && /listen|port/i.test(message))
    fail(`BROKER_PORT ${config.port}: permission denied`)
  // mkdir of the database's folder fails with ENOENT/EEXIST (e.g. under /proc, or below a file): still DUO_DB's fault.
  if (/unable to open|SQLITE_CANTOPEN|EACCES|EROFS|ENOTDIR|ENOENT|EEXIST|permission denied|read-only/i.test(message))
    fail(`DUO_DB "${config.dbPath}" cannot be opened for writing (${message})`)
  fail(message)
}

console.log(`duo broker listening on ${broker.url} (auth: ${config.auth}, db: ${config.dbPath}, sync: ${config.sync})`)
if (broker.adminTokenFile) console.log(`operator token file: ${broker.adminTokenFile}`)
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
