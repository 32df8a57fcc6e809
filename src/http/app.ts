// The broker's HTTP app: every route plugin, OpenAPI from the same schemas, and the one error mapper.
import { openapi } from '@elysiajs/openapi'
import { Elysia } from 'elysia'
import { z } from 'zod'
import { createAccess, type BrokerDeps, HttpError } from './deps.ts'
import { conversationRoutes } from './routes/conversations.ts'
import { deliveryRoutes } from './routes/delivery.ts'
import { eventRoutes } from './routes/events.ts'
import { listenRoutes } from './routes/listen.ts'
import { partnerRoutes } from './routes/partners.ts'
import { StorageError } from '../pg/log.ts'
import { jsonBodyParser, tooLargeMessage, webPageRefusal } from './request-guards.ts'
import { rejected } from './rejections.ts'
import { consoleRoutes } from './routes/console.ts'
import { createSessions, type Sessions } from './sessions.ts'

type Issue = { path?: string; message?: string; summary?: string }

/** What went wrong at the HTTP level, for programs: the body parser's refusals and unknown endpoints. */
const HTTP_REASONS: Record<number, string> = {
  400: 'invalid_body',
  404: 'no_such_endpoint',
  413: 'request_too_large',
  415: 'unsupported_media_type',
}

/** A refusal before any route ran, shaped like the routes' own: `{error, reason}`. */
const httpRefusal = (status: number, error: string, headers?: Record<string, string>): Response =>
  Response.json({ error, reason: HTTP_REASONS[status] ?? 'invalid_request' }, { status, headers })

/** A person-readable sentence from a validation failure: the first problem, with where it is. */
function validationMessage(error: { all?: Issue[]; type?: string; message?: string }): string {
  const first = Array.isArray(error.all) ? error.all[0] : undefined
  const where = first?.path ? String(first.path).replace(/^\//, '').replaceAll('/', '.') : ''
  const what = first?.message ?? first?.summary ?? 'invalid request'
  const part = error.type ?? 'request'
  if (part === 'body' && (where === '' || where === 'root'))
    return `the body must be a JSON object (send Content-Type: application/json): ${what}`
  return where ? `${part} field "${where}": ${what}` : `${part}: ${what}`
}

/** The documented 503: the shared log could not be read or written; nothing was stored, the client may retry. */
let lastStorageLog = 0
function storageUnavailable(error: unknown): Response {
  // Every request fails the same way during an outage: one line every few seconds says it.
  if (Date.now() - lastStorageLog > 5000) {
    lastStorageLog = Date.now()
    console.error(`duo broker: storage failure: ${(error as Error).message}`)
  }
  return Response.json(
    { error: 'the event log cannot be reached right now; nothing was stored, retry later', reason: 'storage_unavailable' },
    { status: 503, headers: { 'retry-after': '1' } },
  )
}

/** With a shared log, each request first brings the replica up to the head (see `BrokerDeps.catchUp`); nothing for SQLite. */
function catchingUp(catchUp: (() => Promise<void>) | undefined, sessions: Sessions) {
  const plugin = new Elysia()
  if (!catchUp) return plugin
  return plugin.onRequest(async ({ request }) => {
    try {
      await catchUp()
      await sessions.refresh(request.headers.get('cookie'))
    } catch (error) {
      return storageUnavailable(error)
    }
  })
}

export function buildApp(deps: BrokerDeps) {
  const sessions = createSessions(deps.config.sessionTtlMs, deps.now, deps.sharedSessions)
  const access = createAccess(deps, sessions)
  const webPages = {
    // Open mode with DUO_ALLOW_OPEN_NETWORK=1 may sit behind a proxy that forwards any Host; token mode always checks.
    checkHost: !(deps.config.auth === 'open' && deps.config.allowOpenNetwork),
    allowedHosts: deps.config.allowedHosts,
  }
  return new Elysia()
    .use(
      openapi({
        path: '/docs',
        mapJsonSchema: { zod: z.toJSONSchema },
        // Swagger UI from the pinned swagger-ui-dist, served by the broker (routes/console.ts): /docs works offline.
        provider: 'swagger-ui',
        swagger: {
          theme: '/docs/assets/swagger-ui.css',
          cdn: '/docs/assets/swagger-ui-bundle.js',
          autoDarkMode: false,
          validatorUrl: null,
          persistAuthorization: false,
        } as never,
        documentation: {
          info: {
            title: 'Duo broker',
            version: '0.1.0',
            description:
              'Messages between Claude Code instances, on an append-only event log. In token mode (DUO_AUTH=token) a request acts ' +
              "with `Authorization: Bearer <token>`: a partner's own token (from its first POST /register), or the operator token " +
              '(DUO_ADMIN_TOKEN). The lock on each endpoint says which it takes; in open mode none is needed.',
          },
          components: {
            securitySchemes: {
              partnerToken: { type: 'http', scheme: 'bearer', description: "A partner's own token, returned once by its first POST /register" },
              operatorToken: { type: 'http', scheme: 'bearer', description: 'The operator token: DUO_ADMIN_TOKEN, or the file the broker printed at start' },
              consoleSession: { type: 'apiKey', in: 'cookie', name: 'duo_session', description: 'The console session from POST /session; same-origin requests only' },
            },
          },
        },
      }),
    )
    .onRequest(({ request }) => {
      if (deps.shutdown.aborted) return Response.json({ error: 'the broker is shutting down' }, { status: 503 })
      // A database file made immutable or read-only is refused before SQLite touches it (reads too: see unwritable).
      const unwritable = deps.store.unwritable()
      if (unwritable) return storageUnavailable(new StorageError(unwritable))
      // Declared sizes are refused here unread; a chunked body is cut at the limit by the parser below. The
      // unread body would leave the connection unusable and hold a graceful stop open: close it.
      if (Number(request.headers.get('content-length') ?? 0) > deps.config.maxBodyBytes)
        return httpRefusal(413, tooLargeMessage(deps.config.maxBodyBytes), { connection: 'close' })
      // In both modes: web pages of other origins, and DNS rebinding, are refused; the broker's own pages pass.
      const refusal = webPageRefusal(request.headers, webPages, request)
      if (refusal) return rejected({ reason: 'web_page_refused', message: refusal })
    })
    .use(catchingUp(deps.catchUp, sessions))
    // 'json' is never reached (the parser before it always answers); it tells the OpenAPI document that bodies are JSON.
    .onParse({ as: 'global' }, [jsonBodyParser(deps.config.maxBodyBytes), 'json' as never])
    .onError(({ code, error, request }) => {
      switch (code) {
        case 'VALIDATION':
          // An answer that does not match its declared schema (src/wire/responses.ts) is the broker's bug, not the client's.
          if ((error as { type?: string }).type === 'response') {
            console.error('answer does not match its response schema:', error.message)
            return Response.json({ error: 'internal error' }, { status: 500 })
          }
          return rejected({ reason: 'invalid_request', message: validationMessage(error as never) })
        case 'PARSE':
          // The body parser's own refusals (size, media type, UTF-8, nesting) arrive wrapped in Elysia's ParseError.
          if (error.cause instanceof HttpError) return httpRefusal(error.cause.status, error.cause.message)
          return httpRefusal(400, 'the request body is not valid JSON (send Content-Type: application/json)')
        case 'NOT_FOUND':
          return httpRefusal(404, `no such endpoint: ${request.method} ${new URL(request.url).pathname} (see /docs)`)
      }
      if (error instanceof StorageError) return storageUnavailable(error)
      if (error instanceof HttpError) return httpRefusal(error.status, error.message)
      const status = (error as { status?: unknown })?.status
      if (typeof status === 'number' && status >= 400 && status < 500)
        return httpRefusal(status, (error as Error).message || 'bad request')
      console.error('unexpected error:', error)
      return Response.json({ error: 'internal error' }, { status: 500 })
    })
    .use(partnerRoutes(deps, access))
    .use(conversationRoutes(deps, access))
    .use(listenRoutes(deps, access))
    .use(deliveryRoutes(deps, access))
    .use(eventRoutes(deps, access))
    .use(consoleRoutes(deps, access, sessions))
}
export type App = ReturnType<typeof buildApp>
