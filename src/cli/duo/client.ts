// `bun run duo`'s calls to the broker: bearer tokens from the identity, refusals as the broker words them.
import { sseFrames } from '../../wire/sse-frames.ts'
import { UsageError } from '../args.ts'

/** A refusal by the broker (4xx/5xx): its sentence, status and reason. */
export class BrokerRefusal extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly reason?: string,
  ) {
    super(message)
  }
}

export function createBrokerCaller(broker: string) {
  async function call<T>(method: string, path: string, token: string | null, body?: unknown): Promise<T> {
    let response: Response
    try {
      response = await fetch(broker + path, {
        method,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      })
    } catch (error) {
      throw new UsageError(`cannot reach the broker at ${broker} (${(error as Error).message}); start it with \`bun run broker\` or pass --broker URL`)
    }
    const text = await response.text()
    let parsed: any = null
    try {
      parsed = text ? JSON.parse(text) : null
    } catch {}
    if (!response.ok) throw new BrokerRefusal(response.status, parsed?.error ?? `HTTP ${response.status}`, parsed?.reason)
    return parsed as T
  }

  return {
    call,
    get: <T>(path: string, token: string | null) => call<T>('GET', path, token),
    post: <T>(path: string, token: string | null, body: unknown = {}) => call<T>('POST', path, token, body),
    /** An SSE stream's response (the caller reads the frames). */
    async stream(path: string, token: string | null, signal: AbortSignal): Promise<Response> {
      const response = await fetch(broker + path, {
        headers: token ? { authorization: `Bearer ${token}` } : {},
        signal,
      }).catch((error: Error) => {
        throw new UsageError(`cannot reach the broker at ${broker} (${error.message})`)
      })
      if (!response.ok) {
        const parsed = (await response.json().catch(() => null)) as { error?: string; reason?: string } | null
        throw new BrokerRefusal(response.status, parsed?.error ?? `HTTP ${response.status}`, parsed?.reason)
      }
      return response
    },
  }
}
export type BrokerCaller = ReturnType<typeof createBrokerCaller>

/** Each `data:` frame of an SSE body, parsed as JSON, in order; ends when the stream does. */
export async function* sseEvents<T>(response: Response): AsyncGenerator<T> {
  for await (const frame of sseFrames(response.body!)) yield JSON.parse(frame.data) as T
}
