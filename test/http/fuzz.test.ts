// Thousands of seeded malformed requests against a real token-mode broker: never a 5xx, every refusal JSON {error}, the log unchanged.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { ID_PATH_TRICKS, type SecureBroker, startSecureBroker } from './secure-harness.ts'

/** DUO_FUZZ_SEED replays a run; DUO_FUZZ_COUNT sets how many requests (the run also stops after BUDGET_MS). */
const SEED = Number(process.env.DUO_FUZZ_SEED ?? 20261125) >>> 0
const COUNT = Number(process.env.DUO_FUZZ_COUNT ?? 5000)
const BUDGET_MS = 15_000
const WORKERS = 12

type Rng = {
  next(): number
  int(n: number): number
  pick<T>(items: readonly T[]): T
  chance(p: number): boolean
}

/** mulberry32: small, fast and good enough to spread requests; one stream per request index keeps runs reproducible under concurrency. */
function rngFor(seed: number, index: number): Rng {
  let a = (seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const int = (n: number) => Math.floor(next() * n)
  return { next, int, pick: (items) => items[int(items.length)]!, chance: (p) => next() < p }
}

type Auth = 'none' | 'garbage' | 'alice' | 'bob' | 'carol' | 'operator'
type Body = { json: unknown } | { raw: string | Uint8Array }
type Fuzzed = {
  method: string
  path: string
  auth: Auth
  headers: Record<string, string>
  body?: Body
  /** What makes this request invalid (for the failure report). */
  defect: string
}

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'] as const

const BAD_IDS = [
  '',
  '.',
  '.hidden',
  '..',
  '../etc',
  'a/b',
  'a\\b',
  'a b',
  'été',
  '😀',
  'a\u0000b',
  'a\nb',
  '\u202egnp',
  'x'.repeat(65),
  'y'.repeat(300),
  '%2e%2e',
  'a?b',
  'a#b',
  '<script>',
  "'; DROP TABLE events; --",
]
const PATH_TRICKS = [
  ...ID_PATH_TRICKS,
  '%0d%0aX-Injected:%201',
  'a'.repeat(3000),
  '%FF%FE',
  'a%20b',
]
const BAD_NUMBERS = ['-1', 'abc', '1.5', '1e400', '9'.repeat(40), 'NaN', 'Infinity', '-0.5', '0x1g', '1,2', ' ', '%00']
// wait and timeout take fractions, and an empty or blank value is 0 for them.
const BAD_DURATIONS = BAD_NUMBERS.filter((n) => n !== '1.5' && n !== ' ')
const CONTENT_TYPES = [
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=zz',
  'application/xml',
  'application/octet-stream',
  'application/jsonx',
  'json',
  ';;',
  'application/json, text/plain',
  'text/json',
]
/** What the one-line rule refuses in names, statuses, group names and paths: controls (newlines, tab), bidi, zero-width, separators. */
const CONTROL = ['\u0000', '\u0001', '\u0007', '\u001b', '\u007f', '\u000b', '\n', '\r', '\t', '\u0085', '\u202e', '\u2066', '\u200b', '\u200d', '\ufeff', '\u2028', '\u3164']

function wrongTypeFor(rng: Rng, type: 'string' | 'number' | 'boolean' | 'array'): unknown {
  const candidates: unknown[] = [42, -1.5, true, false, ['x'], { x: 1 }, [], {}, 'text', '']
  const typeOf = (v: unknown) => (Array.isArray(v) ? 'array' : typeof v)
  return rng.pick(candidates.filter((v) => typeOf(v) !== type && !(type === 'string' && typeof v === 'string')))
}

function garbageToken(rng: Rng): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~+/='
  const length = rng.pick([0, 1, 8, 43, 47, 200, 2000])
  let token = rng.pick(['duo_', 'duo_admin_', '', 'Bearer '])
  for (let i = 0; i < length; i++) token += alphabet[rng.int(alphabet.length)]
  return token
}

/** A JSON text nested `depth` levels deep. */
const deep = (depth: number, open = '[', close = ']') => open.repeat(depth) + close.repeat(depth)

type Template = {
  name: string
  method: 'GET' | 'POST' | 'DELETE'
  /** The partner the request acts as (its own token is the valid one), or 'operator', or null (public). */
  actor: 'alice' | 'carol' | 'operator' | null
  path: (rng: Rng) => string
  /** A body that would be valid (POST only). */
  body?: (rng: Rng) => Record<string, unknown>
  /** Fields whose absence is invalid, and each typed field's type. */
  required?: string[]
  types?: Record<string, 'string' | 'number' | 'boolean' | 'array'>
  idFields?: string[]
  /** Overlong values, each past a limit. */
  overlimit?: Array<(rng: Rng) => [string, unknown]>
  textFields?: string[]
  /** Requests with the own token that the rules refuse (no validation error). */
  semantic?: Array<(rng: Rng, ctx: Context) => { path?: string; body?: Record<string, unknown>; query?: string; defect: string }>
  /** Invalid query strings (GET only). */
  badQueries?: Array<(rng: Rng) => string>
  /** Read-only with no defect needed: a 2xx is allowed. */
  readOnly?: boolean
  /** Param in the path that path tricks replace. */
  pathWithParam?: (param: string) => string
}

type Context = { group: string; lastSeq: number }

const templates = (ctx: Context): Template[] => [
  {
    name: 'register',
    method: 'POST',
    actor: 'alice',
    path: () => '/register',
    body: (rng) => ({ partnerId: 'alice', ...(rng.chance(0.5) ? { name: 'Alice' } : {}), ...(rng.chance(0.3) ? { projectPath: '/p' } : {}) }),
    required: ['partnerId'],
    types: { partnerId: 'string', name: 'string', projectPath: 'string' },
    idFields: ['partnerId'],
    overlimit: [() => ['name', 'n'.repeat(101)], () => ['projectPath', 'p'.repeat(1025)]],
    textFields: ['name', 'projectPath'],
  },
  {
    name: 'unregister',
    method: 'POST',
    actor: 'alice',
    path: () => '/unregister',
    body: () => ({ partnerId: 'alice' }),
    required: ['partnerId'],
    types: { partnerId: 'string' },
    idFields: ['partnerId'],
  },
  {
    name: 'talk',
    method: 'POST',
    actor: 'alice',
    path: () => '/talk',
    body: (rng) => (rng.chance(0.5) ? { fromId: 'alice', to: 'bob', content: 'hi' } : { fromId: 'alice', conversationId: ctx.group, content: 'hi' }),
    required: ['fromId', 'content'],
    types: { fromId: 'string', content: 'string', to: 'string', conversationId: 'string' },
    idFields: ['fromId', 'to', 'conversationId'],
    overlimit: [
      (rng) => ['content', 'c'.repeat(64 * 1024 + 1 + rng.int(100_000))],
      (rng) => ['content', '€'.repeat(21_846 + rng.int(1000))],
      () => ['idempotencyKey', 'k'.repeat(129)],
      () => ['content', ''],
    ],
    semantic: [
      () => ({ body: { fromId: 'alice', to: 'zed', content: 'x' }, defect: 'unknown recipient' }),
      () => ({ body: { fromId: 'alice', to: 'alice', content: 'x' }, defect: 'talk to self' }),
      () => ({ body: { fromId: 'alice', content: 'x' }, defect: 'no recipient' }),
      () => ({ body: { fromId: 'alice', conversationId: 'group_nope', content: 'x' }, defect: 'unknown conversation' }),
      () => ({ body: { fromId: 'carol', conversationId: ctx.group, content: 'x' }, defect: 'outsider into group (as carol)' }),
    ],
  },
  {
    name: 'listen',
    method: 'GET',
    actor: 'alice',
    path: (rng) => `/listen/alice?${rng.pick(['after=0&wait=0', 'timeout=0', 'after=1&wait=1'])}`,
    pathWithParam: (p) => `/listen/${p}?after=0&wait=0`,
    badQueries: [
      (rng) => `after=${rng.pick(BAD_NUMBERS)}`,
      (rng) => `after=0&wait=${rng.pick([...BAD_DURATIONS, '3601', '99999'])}`,
      (rng) => `timeout=${rng.pick([...BAD_DURATIONS, '61', '1000'])}`,
      (rng) => `after=0&wait=0&conversationId=${encodeURIComponent(rng.pick(BAD_IDS.filter((s) => s !== '%2e%2e')) || '.')}`,
      () => 'after=1&after=2',
      (rng) => `after=${'9'.repeat(1 + rng.int(5000))}`,
    ],
    semantic: [
      (_rng, c) => ({ query: `after=${c.lastSeq + 1}&wait=0`, defect: 'cursor beyond the log' }),
      () => ({ query: `after=0&wait=5&conversationId=group_nope`, defect: 'unknown conversation' }),
      () => ({ path: `/listen/carol?after=0&wait=5&conversationId=${ctx.group}`, defect: 'outsider listens to group (as carol)' }),
    ],
  },
  {
    name: 'ack',
    method: 'POST',
    actor: 'alice',
    path: () => '/listen/alice/ack',
    pathWithParam: (p) => `/listen/${p}/ack`,
    body: () => ({ cursor: 1 }),
    required: ['cursor'],
    types: { cursor: 'number', conversationId: 'string' },
    idFields: ['conversationId'],
    overlimit: [() => ['cursor', -1], () => ['cursor', 1.5], () => ['cursor', 1e300]],
    semantic: [
      (_rng, c) => ({ body: { cursor: c.lastSeq + 1 }, defect: 'cursor beyond the log' }),
      () => ({ body: { cursor: 1, conversationId: 'group_nope' }, defect: 'unknown conversation' }),
      () => ({ path: '/listen/carol/ack', body: { cursor: 1, conversationId: ctx.group }, defect: 'outsider acks group (as carol)' }),
    ],
  },
  {
    name: 'stream',
    method: 'GET',
    actor: 'alice',
    path: () => '/listen/alice/stream?after=0',
    pathWithParam: (p) => `/listen/${p}/stream`,
    badQueries: [
      (rng) => `after=${rng.pick(BAD_NUMBERS)}`,
      (rng) => `conversationId=${encodeURIComponent(rng.pick(BAD_IDS.filter((s) => s !== '%2e%2e')) || '.')}`,
    ],
    semantic: [
      (_rng, c) => ({ query: `after=${c.lastSeq + 1 + 1000}`, defect: 'cursor beyond the log' }),
      () => ({ path: `/listen/carol/stream?conversationId=${ctx.group}`, defect: 'outsider streams group (as carol)' }),
    ],
  },
  {
    name: 'create',
    method: 'POST',
    actor: 'alice',
    path: () => '/conversations',
    body: () => ({ creatorId: 'alice', name: 'g', participants: ['bob'] }),
    required: ['creatorId', 'name', 'participants'],
    types: { creatorId: 'string', name: 'string', participants: 'array' },
    idFields: ['creatorId'],
    overlimit: [
      () => ['name', 'n'.repeat(101)],
      () => ['name', ''],
      () => ['participants', []],
      () => ['participants', Array.from({ length: 100 }, (_, i) => `m${i}`)],
      (rng) => ['participants', ['bob', rng.pick(BAD_IDS)]],
    ],
    textFields: ['name'],
    semantic: [
      () => ({ body: { creatorId: 'alice', name: 'g', participants: ['zed'] }, defect: 'unknown participant' }),
      () => ({ body: { creatorId: 'alice', name: 'g', participants: ['alice'] }, defect: 'nobody else' }),
    ],
  },
  {
    name: 'conversation list',
    method: 'GET',
    actor: 'alice',
    path: () => '/conversations/alice',
    pathWithParam: (p) => `/conversations/${p}`,
    readOnly: true,
  },
  {
    name: 'leave',
    method: 'POST',
    actor: 'alice',
    path: () => `/conversations/${ctx.group}/leave`,
    pathWithParam: (p) => `/conversations/${p}/leave`,
    body: () => ({ partnerId: 'alice' }),
    required: ['partnerId'],
    types: { partnerId: 'string' },
    idFields: ['partnerId'],
    semantic: [
      () => ({ path: '/conversations/direct_alice_bob/leave', defect: 'leave a direct conversation' }),
      () => ({ path: '/conversations/group_nope/leave', defect: 'unknown conversation' }),
      () => ({ path: `/conversations/${ctx.group}/leave`, body: { partnerId: 'carol' }, defect: 'outsider leaves (as carol)' }),
    ],
  },
  {
    name: 'members',
    method: 'POST',
    actor: 'alice',
    path: () => `/conversations/${ctx.group}/members`,
    pathWithParam: (p) => `/conversations/${p}/members`,
    body: () => ({ partnerId: 'alice', members: ['bob'] }),
    required: ['partnerId', 'members'],
    types: { partnerId: 'string', members: 'array' },
    idFields: ['partnerId'],
    overlimit: [
      () => ['members', []],
      () => ['members', Array.from({ length: 101 }, (_, i) => `m${i}`)],
      (rng) => ['members', ['bob', rng.pick(BAD_IDS)]],
    ],
    semantic: [
      () => ({ body: { partnerId: 'alice', members: ['zed'] }, defect: 'unknown partner added' }),
      () => ({ path: '/conversations/direct_alice_bob/members', defect: 'members of a direct conversation' }),
      () => ({ path: '/conversations/group_nope/members', defect: 'unknown conversation' }),
      () => ({ body: { partnerId: 'carol', members: ['carol'] }, defect: 'outsider adds itself (as carol)' }),
    ],
  },
  {
    name: 'remove members',
    method: 'DELETE',
    actor: 'alice',
    path: () => `/conversations/${ctx.group}/members`,
    pathWithParam: (p) => `/conversations/${p}/members`,
    // An agent removing others: refused as such (only a person removes members), so every mutation is a refusal too.
    body: () => ({ partnerId: 'alice', members: ['bob'] }),
    required: ['partnerId', 'members'],
    types: { partnerId: 'string', members: 'array' },
    idFields: ['partnerId'],
    overlimit: [() => ['members', []], () => ['members', Array.from({ length: 101 }, (_, i) => `m${i}`)]],
    semantic: [
      () => ({ path: '/conversations/direct_alice_bob/members', defect: 'members of a direct conversation' }),
      () => ({ path: '/conversations/group_nope/members', defect: 'unknown conversation' }),
    ],
  },
  {
    name: 'rename',
    method: 'POST',
    actor: 'alice',
    path: () => `/conversations/${ctx.group}/rename`,
    pathWithParam: (p) => `/conversations/${p}/rename`,
    body: () => ({ partnerId: 'alice', name: 'fuzz' }),
    required: ['partnerId', 'name'],
    types: { partnerId: 'string', name: 'string' },
    idFields: ['partnerId'],
    overlimit: [() => ['name', 'n'.repeat(101)], () => ['name', '']],
    textFields: ['name'],
    semantic: [
      () => ({ path: '/conversations/direct_alice_bob/rename', defect: 'rename a direct conversation' }),
      () => ({ path: '/conversations/group_nope/rename', defect: 'unknown conversation' }),
      () => ({ body: { partnerId: 'carol', name: 'mine' }, defect: 'outsider renames (as carol)' }),
    ],
  },
  {
    name: 'resume',
    method: 'POST',
    actor: 'operator',
    path: () => `/conversations/${ctx.group}/resume`,
    pathWithParam: (p) => `/conversations/${p}/resume`,
    // The operator speaking for an agent: refused as such, so every mutation of it is a refusal too.
    body: () => ({ partnerId: 'bob' }),
    types: { partnerId: 'string' },
    idFields: ['partnerId'],
    semantic: [
      () => ({ body: { partnerId: 'zed' }, defect: 'unknown partner resumes' }),
      () => ({ path: '/conversations/group_nope/resume', body: {}, defect: 'unknown conversation' }),
    ],
  },
  {
    name: 'pause',
    method: 'POST',
    actor: 'operator',
    path: () => `/conversations/${ctx.group}/pause`,
    pathWithParam: (p) => `/conversations/${p}/pause`,
    // As for resume: the operator speaking for an agent is refused, so every mutation of it is a refusal too.
    body: () => ({ partnerId: 'bob' }),
    types: { partnerId: 'string' },
    idFields: ['partnerId'],
    semantic: [
      () => ({ body: { partnerId: 'zed' }, defect: 'unknown partner pauses' }),
      () => ({ path: '/conversations/group_nope/pause', body: {}, defect: 'unknown conversation' }),
    ],
  },
  {
    name: 'retire',
    method: 'DELETE',
    actor: 'operator',
    path: () => '/partners/carol',
    pathWithParam: (p) => `/partners/${p}`,
    semantic: [() => ({ path: '/partners/zed', defect: 'unknown partner' })],
  },
  {
    name: 'history',
    method: 'GET',
    actor: 'alice',
    path: () => `/conversations/${ctx.group}/messages`,
    pathWithParam: (p) => `/conversations/${p}/messages`,
    badQueries: [(rng) => `limit=${rng.pick([...BAD_NUMBERS, '0', '1001'])}`, (rng) => `before=${rng.pick(BAD_NUMBERS)}`],
    readOnly: true,
  },
  {
    name: 'participants',
    method: 'GET',
    actor: 'alice',
    path: () => `/conversations/${ctx.group}/participants`,
    pathWithParam: (p) => `/conversations/${p}/participants`,
    readOnly: true,
  },
  {
    name: 'partners',
    method: 'GET',
    actor: 'alice',
    path: () => '/partners',
    badQueries: [(rng) => `all=${rng.pick(['maybe', '', '2', 'TRUE ', '%00'])}`],
    readOnly: true,
  },
  {
    name: 'status',
    method: 'POST',
    actor: 'alice',
    path: () => '/partners/alice/status',
    pathWithParam: (p) => `/partners/${p}/status`,
    body: () => ({ message: 'busy' }),
    types: { message: 'string' },
    overlimit: [() => ['message', 'm'.repeat(501)]],
    textFields: ['message'],
  },
  {
    name: 'notifications',
    method: 'POST',
    actor: 'alice',
    path: () => '/partners/alice/notifications',
    pathWithParam: (p) => `/partners/${p}/notifications`,
    body: () => ({ enabled: false }),
    required: ['enabled'],
    types: { enabled: 'boolean' },
  },
  {
    name: 'reissue',
    method: 'POST',
    actor: 'operator',
    path: () => '/partners/alice/token',
    pathWithParam: (p) => `/partners/${p}/token`,
    semantic: [() => ({ path: '/partners/zed/token', defect: 'unknown partner' })],
  },
  {
    name: 'events',
    method: 'GET',
    actor: 'operator',
    path: () => '/events',
    badQueries: [
      (rng) => `after=${rng.pick(BAD_NUMBERS)}`,
      (rng) => `limit=${rng.pick([...BAD_NUMBERS, '0', '1001'])}`,
      (rng) => `type=${rng.pick(['Nope', '', 'messagesent', 'MessageSent,PartnerRegistered'])}`,
      (rng) => `partner=${encodeURIComponent(rng.pick(BAD_IDS.filter((s) => s !== '%2e%2e')) || '.')}`,
    ],
    semantic: [(_rng, c) => ({ query: `after=${c.lastSeq + 1}`, defect: 'cursor beyond the log' })],
    readOnly: true,
  },
  {
    name: 'events stream',
    method: 'GET',
    actor: 'operator',
    path: () => '/events/stream',
    badQueries: [(rng) => `after=${rng.pick(BAD_NUMBERS)}`],
    semantic: [(_rng, c) => ({ query: `after=${c.lastSeq + 7}`, defect: 'cursor beyond the log' })],
  },
  { name: 'health', method: 'GET', actor: null, path: () => '/health', readOnly: true },
]

/** One request with at least one defect (except on read-only endpoints), plus harmless noise. */
function generate(rng: Rng, ctx: Context, all: Template[]): Fuzzed {
  if (rng.chance(0.04)) {
    const junk = Array.from({ length: 1 + rng.int(40) }, () => rng.pick(['a', 'Z', '9', '-', '_', '.', '%', '%2F', '%00', '%ZZ', '~', '!', '(', '*', 'é', '😀', ';', ',', '='])).join('')
    return { method: rng.pick(METHODS), path: `/x-${encodeURI(junk).replaceAll('%25', '%')}`, auth: rng.pick(['none', 'alice', 'garbage']), headers: {}, defect: 'unknown path' }
  }
  const t = rng.pick(all)
  const ownAuth: Auth = t.actor ?? 'none'
  let method: string = t.method
  let path = t.path(rng)
  let auth: Auth = ownAuth
  let body: Body | undefined = t.body ? { json: t.body(rng) } : undefined
  const headers: Record<string, string> = {}
  let defect = 'none'

  const kinds: string[] = ['auth', 'web-page']
  if (t.body) kinds.push('body', 'body', 'body')
  if (t.pathWithParam) kinds.push('path')
  if (t.badQueries) kinds.push('query', 'query')
  if (t.semantic) kinds.push('semantic', 'semantic')
  if (t.method === 'POST') kinds.push('content-type', 'big')
  const kind = t.readOnly && rng.chance(0.3) ? 'none' : rng.pick(kinds)

  switch (kind) {
    case 'auth': {
      const others: Auth[] = t.actor === 'operator' ? ['none', 'garbage', 'alice', 'bob', 'carol'] : ['none', 'garbage', 'bob', 'operator']
      if (t.actor === null) {
        // A public endpoint has no auth defect: make it a method defect instead.
        method = rng.pick(['POST', 'PUT', 'DELETE', 'PATCH'])
        defect = `method ${method} on a GET-only path`
      } else {
        auth = rng.pick(t.readOnly && t.actor !== 'operator' ? (['none', 'garbage'] as Auth[]) : others)
        defect = `auth ${auth}`
        // Reading history and participants as a non-member is the outsider case.
        if (t.readOnly && (t.name === 'history' || t.name === 'participants') && rng.chance(0.5)) auth = 'carol'
      }
      break
    }
    case 'body': {
      const json = (body as { json: Record<string, unknown> }).json
      const mutation = rng.pick(['drop', 'retype', 'badid', 'overlimit', 'control', 'not-object', 'syntax', 'deep', 'utf8'])
      defect = `body ${mutation}`
      if (mutation === 'drop' && t.required?.length) delete json[rng.pick(t.required)]
      else if (mutation === 'retype' && t.types) {
        const field = rng.pick(Object.keys(t.types))
        json[field] = wrongTypeFor(rng, t.types[field]!)
      } else if (mutation === 'badid' && t.idFields?.length) json[rng.pick(t.idFields)] = rng.pick(BAD_IDS)
      else if (mutation === 'overlimit' && t.overlimit?.length) {
        const [field, value] = rng.pick(t.overlimit)(rng)
        json[field] = value
      } else if (mutation === 'control' && t.textFields?.length) {
        json[rng.pick(t.textFields)] = `ok${rng.pick(CONTROL)}ok`
      } else if (mutation === 'not-object') body = { json: rng.pick([[], [json], 42, 'text', null, true, -0]) }
      else if (mutation === 'deep') body = { raw: rng.chance(0.5) ? deep(33 + rng.int(20_000)) : `{"a":${deep(33 + rng.int(5000), '{"b":', '}')}1}` }
      else if (mutation === 'utf8') {
        const bytes = new TextEncoder().encode(JSON.stringify(json))
        const at = 1 + rng.int(bytes.length - 1)
        const bad = rng.pick([[0xff], [0xc0, 0x80], [0x80], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80]])
        body = { raw: new Uint8Array([...bytes.subarray(0, at), ...bad, ...bytes.subarray(at)]) }
      } else {
        // 'syntax', and the fallback for mutations a template has nothing for
        const text = JSON.stringify(json)
        const cut = rng.pick([
          () => text.slice(0, 1 + rng.int(text.length - 1)),
          () => text.replace('"', ''),
          () => text.replace(':', ''),
          () => `${text},`,
          () => text.replaceAll('"', "'"),
          () => `${text}}`,
          () => text.replace('{', '{,'),
        ])()
        body = { raw: cut }
        defect = 'body syntax'
      }
      break
    }
    case 'path': {
      const trick = rng.chance(0.5) ? rng.pick(PATH_TRICKS) : encodeURIComponent(rng.pick(BAD_IDS.filter((s) => s !== '' && s !== '.' && s !== '..')))
      path = t.pathWithParam!(trick)
      defect = `path ${trick.slice(0, 30)}`
      break
    }
    case 'query': {
      const query = rng.pick(t.badQueries!)(rng)
      path = `${path.split('?')[0]}?${query}`
      defect = `query ${query.slice(0, 40)}`
      break
    }
    case 'semantic': {
      const s = rng.pick(t.semantic!)(rng, ctx)
      if (s.path) path = s.path
      if (s.query) path = `${path.split('?')[0]}?${s.query}`
      if (s.body) body = { json: s.body }
      if (s.path?.startsWith('/listen/carol') || s.body?.fromId === 'carol' || s.body?.partnerId === 'carol') auth = 'carol'
      defect = `rule: ${s.defect}`
      break
    }
    case 'content-type': {
      headers['content-type'] = rng.pick(CONTENT_TYPES)
      body = { raw: JSON.stringify(body && 'json' in body ? body.json : { x: 1 }) }
      defect = `content-type ${headers['content-type']}`
      break
    }
    case 'web-page': {
      // What a page in the operator's browser sends: a foreign origin, cross-site metadata, a rebound Host.
      const [name, value] = rng.pick([
        ['origin', 'https://evil.example'],
        ['origin', 'null'],
        ['origin', 'http://localhost:5173'],
        ['sec-fetch-site', 'cross-site'],
        ['sec-fetch-site', 'same-site'],
        ['host', `rebind-${rng.int(1000)}.example`],
      ] as const)
      headers[name] = value
      defect = `web page ${name} ${value}`
      break
    }
    case 'big':
      body = { raw: `{"pad":"${'x'.repeat(1024 * 1024 + rng.int(64 * 1024))}"}` }
      defect = 'body over 1 MiB'
      break
    default:
      defect = 'none (read-only)'
  }

  // Noise that must not matter: unknown fields, unknown headers and query parameters, another method now and then.
  if (body && 'json' in body && body.json !== null && typeof body.json === 'object' && !Array.isArray(body.json) && rng.chance(0.3))
    Object.assign(body.json as object, rng.pick([{ extra: 1 }, { __proto__x: { admin: true } }, { tokenHash: 'f'.repeat(64) }, { seq: 1 }]))
  if (rng.chance(0.2)) headers[`x-fuzz-${rng.int(100)}`] = rng.pick(['1', 'a'.repeat(2000), ''])
  if (rng.chance(0.15)) path += `${path.includes('?') ? '&' : '?'}junk${rng.int(10)}=${rng.pick(['1', '%00', 'x'.repeat(500)])}`
  if (rng.chance(0.05) && defect !== 'none (read-only)') method = rng.pick(METHODS)
  if (t.method === 'POST' && rng.chance(0.05) && !headers['content-type']) headers['content-type'] = 'application/json; charset=utf-8'
  return { method, path, auth, headers, body, defect: `${t.name}: ${defect}` }
}

describe('fuzz: malformed requests against a token-mode broker', () => {
  let broker: SecureBroker
  const tokens: Record<string, string> = {}
  let ctx: Context

  beforeAll(async () => {
    broker = await startSecureBroker()
    for (const id of ['alice', 'bob', 'carol']) tokens[id] = await broker.register(id)
    const created = await broker.call('POST', '/conversations', {
      token: tokens.alice,
      body: { creatorId: 'alice', name: 'fuzz', participants: ['bob'] },
    })
    await broker.call('POST', '/talk', { token: tokens.alice, body: { fromId: 'alice', to: 'bob', content: 'hello' } })
    await broker.call('POST', '/talk', { token: tokens.bob, body: { fromId: 'bob', conversationId: created.body.conversation.id, content: 'hi all' } })
    ctx = { group: created.body.conversation.id, lastSeq: await broker.lastSeq() }
  })
  afterAll(() => broker.close())

  test(`${COUNT} seeded malformed requests: no 5xx, every refusal JSON {error}, the log unchanged`, async () => {
    console.log(`fuzz seed ${SEED} (replay with DUO_FUZZ_SEED=${SEED}), up to ${COUNT} requests or ${BUDGET_MS / 1000} s`)
    const all = templates(ctx)
    const before = await broker.call('GET', `/events?after=0&limit=1000`, { token: broker.adminToken })
    const failures: string[] = []
    const statuses = new Map<number, number>()
    const started = Date.now()
    let nextIndex = 0
    let sent = 0

    const send = async (index: number) => {
      const rng = rngFor(SEED, index)
      const request = generate(rng, ctx, all)
      const headers: Record<string, string> = { ...request.headers }
      const token =
        request.auth === 'none' ? undefined : request.auth === 'garbage' ? garbageToken(rng) : request.auth === 'operator' ? broker.adminToken : tokens[request.auth]
      if (token !== undefined) headers.authorization = rng.chance(0.05) ? `bearer   ${token}` : `Bearer ${token}`
      let payload: string | Uint8Array | undefined
      if (request.body && request.method !== 'GET' && request.method !== 'HEAD') {
        payload = 'json' in request.body ? JSON.stringify(request.body.json) : request.body.raw
        headers['content-type'] ??= 'application/json'
      }
      const describe = () =>
        `#${index} ${request.method} ${request.path.slice(0, 120)} auth=${request.auth} [${request.defect}] body=${String(payload ?? '').slice(0, 120)}`
      let response: Response
      let text: string
      try {
        response = await fetch(broker.url + request.path, { method: request.method, headers, body: payload, signal: AbortSignal.timeout(4000) })
        text = await response.text()
      } catch (error) {
        failures.push(`${describe()} -> ${error instanceof Error ? error.name : String(error)} (no whole answer within 4 s)`)
        return
      }
      statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1)
      const problem = (() => {
        if (response.status >= 500) return 'a 5xx'
        if (request.defect.includes(': web page ') && response.status !== 403) return 'a request from a web page not refused with 403'
        if (response.status >= 200 && response.status < 300) {
          const readOnly = request.method === 'GET' || request.method === 'HEAD'
          return readOnly && /read-only|^(health|partners|conversation list|history|participants|events):/.test(request.defect) && !request.path.startsWith('/listen')
            ? null
            : 'a 2xx for a request that should fail'
        }
        if (response.status >= 400 && request.method !== 'HEAD') {
          if (!(response.headers.get('content-type') ?? '').startsWith('application/json')) return 'a refusal that is not JSON'
          try {
            const parsed = JSON.parse(text) as { error?: unknown }
            if (typeof parsed.error !== 'string' || parsed.error.length === 0) return 'a refusal without an error sentence'
          } catch {
            return 'a refusal whose body is not JSON'
          }
        }
        return null
      })()
      if (problem) failures.push(`${describe()} -> ${response.status} ${text.slice(0, 200)}: ${problem}`)
    }

    await Promise.all(
      Array.from({ length: WORKERS }, async () => {
        while (nextIndex < COUNT && Date.now() - started < BUDGET_MS) {
          const index = nextIndex++
          await send(index)
          sent++
        }
      }),
    )
    const histogram = [...statuses].sort(([a], [b]) => a - b).map(([s, n]) => `${s}×${n}`).join(' ')
    console.log(`fuzz: ${sent} requests in ${Date.now() - started} ms; statuses ${histogram}`)

    expect(failures.slice(0, 15)).toEqual([])
    // Enough requests went out, and they reached every kind of refusal (so the generator is not stuck on one).
    expect(sent).toBeGreaterThanOrEqual(Math.min(COUNT, 1000))
    for (const status of [400, 401, 403, 404, 409, 413]) expect(statuses.get(status) ?? 0).toBeGreaterThan(0)

    // The log did not grow: same last seq, same events.
    expect(await broker.lastSeq()).toBe(ctx.lastSeq)
    const after = await broker.call('GET', `/events?after=0&limit=1000`, { token: broker.adminToken })
    expect(after.body).toEqual(before.body)
    // And the broker still works: a valid message goes through.
    const ok = await broker.call('POST', '/talk', { token: tokens.alice, body: { fromId: 'alice', to: 'bob', content: 'still alive' } })
    expect(ok.status).toBe(200)
    expect(await broker.lastSeq()).toBe(ctx.lastSeq + 1)
  }, 40_000)
})
