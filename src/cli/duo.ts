// `bun run duo …`: the human's seat in a terminal — log in as a person, send, read, watch, partners, log; `--help` on each.
import { runCli, UsageError } from './args.ts'
import { COMMANDS, type Context, USAGE } from './duo/commands.ts'
import { BrokerRefusal } from './duo/client.ts'
import { paintFor } from './duo/format.ts'

type Spec = Record<string, 'string' | 'boolean'>

/** Flags (`--name value`, `--name=value`, boolean `--name`) and positional words, in order; `--` ends the flags. */
export function splitArgs(argv: string[], spec: Spec): { flags: Record<string, string | boolean>; words: string[] } {
  const flags: Record<string, string | boolean> = {}
  const words: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--') {
      words.push(...argv.slice(i + 1))
      break
    }
    const match = /^--([a-z][a-z-]*)(?:=(.*))?$/s.exec(arg)
    if (!match) {
      words.push(arg)
      continue
    }
    const name = match[1]!
    const kind = spec[name]
    if (!kind) throw new UsageError(`unknown option --${name} (see --help)`)
    if (kind === 'boolean') {
      if (match[2] !== undefined) throw new UsageError(`--${name} takes no value`)
      flags[name] = true
      continue
    }
    const value = match[2] ?? argv[++i]
    if (value === undefined) throw new UsageError(`--${name} needs a value`)
    flags[name] = value
  }
  return { flags, words }
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(USAGE)
    return name === undefined ? 2 : 0
  }
  const command = COMMANDS[name]
  if (!command) throw new UsageError(`unknown command "${name}" (see bun run duo --help)`)
  const { flags, words } = splitArgs(rest, { ...command.flags, json: 'boolean', help: 'boolean', broker: 'string' })
  if (flags.help || words[0] === '-h') {
    console.log(command.help)
    return 0
  }
  const context: Context = {
    flags,
    words,
    json: flags.json === true,
    paint: paintFor(process.stdout.isTTY === true),
    out: (line) => process.stdout.write(`${line}\n`),
  }
  try {
    return await command.run(context)
  } catch (error) {
    if (!(error instanceof BrokerRefusal)) throw error
    if (context.json) console.log(JSON.stringify({ error: error.message, reason: error.reason, status: error.status }))
    console.error(`duo: the broker refused (${error.status}${error.reason ? `, ${error.reason}` : ''}): ${error.message}`)
    return 1
  }
}

if (import.meta.main) await runCli('duo', () => main(process.argv.slice(2)))
