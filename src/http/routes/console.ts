// The human's seat in the browser: the console's page and assets, sign-in by session cookie, and the operator's wide views.
import { Elysia } from 'elysia'
import { z } from 'zod'
import { AllConversationsResponse, LogHealthResponse, SessionResponse, Success } from '../../wire/responses.ts'
import { authPlugin } from '../auth-plugin.ts'
import { sameSecret } from '../auth.ts'
import { createChainCheck } from '../chain-check.ts'
import { type Asset, buildConsole, swaggerAssets } from '../console-assets.ts'
import type { Access, BrokerDeps } from '../deps.ts'
import { rejected } from '../rejections.ts'
import { cookieValue, SESSION_COOKIE, type Sessions, sessionCookie } from '../sessions.ts'
import { conversationJson } from './conversations.ts'

const SignInBody = z.object({ token: z.string().min(1, 'give the operator token').max(1000) })

/** Nothing but the broker itself: a page that tried to load or send anything elsewhere is stopped by the browser. */
const CONSOLE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// One bundle per process: every broker started in it serves the same bytes.
let consoleBuild: Promise<Map<string, Asset>> | undefined
let swagger: Map<string, Asset> | undefined

const serve = (asset: Asset | undefined, extra: Record<string, string> = {}) =>
  asset
    ? new Response(asset.body, { headers: { 'content-type': asset.type, 'cache-control': 'no-cache', ...extra } })
    : Response.json({ error: 'no such console file' }, { status: 404 })

export function consoleRoutes({ store, config, adminToken, now }: BrokerDeps, access: Access, sessions: Sessions) {
  const { views, log } = store
  consoleBuild ??= buildConsole()
  swagger ??= swaggerAssets()
  const chain = createChainCheck((after, limit) => log.readAfter(after, limit), log.lastSeq)
  const open = config.auth === 'open'

  const sessionOf = (cookie: string | undefined) => sessions.expiryOf(cookieValue(cookie, SESSION_COOKIE))

  return new Elysia({ name: 'console' })
    .use(authPlugin(access))
    .get('/', async () => serve((await consoleBuild!).get('index.html'), { 'content-security-policy': CONSOLE_CSP }), {
      detail: { summary: 'The web console (sign in with the operator token)' },
    })
    .get('/console/:file', async ({ params }) => serve((await consoleBuild!).get(params.file)), { detail: { hide: true } })
    .get('/docs/assets/:file', ({ params }) => serve(swagger!.get(params.file)), { detail: { hide: true } })
    .get(
      '/session',
      ({ headers }) => {
        const expiry = sessionOf(headers.cookie)
        return { auth: config.auth, signedIn: open || expiry !== null, expiresAt: expiry?.toISOString() ?? null }
      },
      { response: { 200: SessionResponse }, detail: { summary: 'Console: whether this browser is signed in (open mode needs no sign-in)' } },
    )
    .post(
      '/session',
      async ({ body, set }) => {
        if (!sameSecret(body.token, adminToken)) return rejected({ reason: 'token_invalid' })
        const session = sessions.open()
        await session.saved
        const maxAge = Math.round((session.expiresAt.getTime() - now().getTime()) / 1000)
        set.headers['set-cookie'] = sessionCookie(session.value, maxAge, false)
        return { auth: config.auth, signedIn: true, expiresAt: session.expiresAt.toISOString() }
      },
      {
        body: SignInBody,
        response: { 200: SessionResponse },
        detail: { summary: 'Console: sign in with the operator token; answers with an HttpOnly, SameSite=Strict session cookie' },
      },
    )
    .delete(
      '/session',
      async ({ headers, set }) => {
        await sessions.close(cookieValue(headers.cookie, SESSION_COOKIE))
        set.headers['set-cookie'] = sessionCookie('', 0, false)
        return { success: true as const }
      },
      { response: { 200: Success }, detail: { summary: 'Console: sign out (the session ends at once)' } },
    )
    .get(
      '/conversations',
      () => ({
        conversations: views.conversations.everyOne(10_000).map((c) => ({
            ...conversationJson(c),
            is_paused: c.is_paused === 1,
            hops: c.hops,
            last_message_seq: c.last_message_seq,
            message_count: c.message_count,
            participants: c.participants,
          })),
      }),
      {
        logReader: true,
        response: { 200: AllConversationsResponse },
        detail: { summary: 'Operator: every conversation, most recently active first, with its members and message count' },
      },
    )
    .get('/log/health', () => chain(), {
      logReader: true,
      response: { 200: LogHealthResponse },
      detail: { summary: "Operator: the log's last seq and how far its hash chain is verified" },
    })
}
