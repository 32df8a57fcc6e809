// Stdio entry of the partner (`bun run partner`): one MCP server inside one Claude Code instance.
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js'
import { ConfigError, loadPartnerConfig, type PartnerConfig } from './config.ts'
import { startPartner } from './start.ts'

// stdout carries the MCP protocol: everything human goes to stderr.
let config: PartnerConfig
try {
  config = loadPartnerConfig(process.env, process.cwd())
} catch (error) {
  if (!(error instanceof ConfigError)) throw error
  console.error(`duo partner: ${error.message}`)
  process.exit(1)
}

const starting = startPartner({ config, transport: new StdioServerTransport() })

let exiting = false
async function shutdown(why: string): Promise<void> {
  if (exiting) return
  exiting = true
  console.error(`duo partner: ${why}; unregistering and exiting`)
  // Never hang on a broker that does not answer: the client kills us soon anyway.
  setTimeout(() => process.exit(0), 3000).unref()
  try {
    const running = await starting
    await running.stop()
  } catch (error) {
    console.error(`duo partner: ${(error as Error).message}`)
  }
  process.exit(0)
}

// Installed before start-up finishes: a client may close stdin while we are still registering.
// The SDK does not notice stdin closing; Bun emits 'end' when the client closes it.
process.stdin.on('end', () => void shutdown('stdin closed'))
process.on('SIGTERM', () => void shutdown('SIGTERM'))
process.on('SIGINT', () => void shutdown('SIGINT'))

await starting
