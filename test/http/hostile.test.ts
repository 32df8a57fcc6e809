// Hostile input against a real token-mode broker: limits, malformed bodies, path and header tricks — each a JSON 4xx that changes nothing.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { slowTest } from '../slow.ts'
import { readdirSync } from 'node:fs'
import { connect } from 'node:net'
import { configFromEnv } from '../../src/http/config.ts'
import { MANY_PARTNERS } from './helpers.ts'
import { expectRefusal, ID_PATH_TRICKS, rawRequest, type SecureBroker, startSecureBroker } from './secure-harness.ts'

const MiB = 1024 * 1024

describe('hostile input', () => {
  let broker: SecureBroker
  let alice: string
  let filesBefore: string[]

  beforeAll(async () => {
    // The group-size test registers 100 partners at once.
    broker = await startSecureBroker(MANY_PARTNERS)
    alice = await broker.register('alice')
    await broker.register('bob')
    filesBefore = readdirSync(broker.dir).sort()
  })
  afterAll(() => broker.close())

  /** Runs `refusals` and asserts the log did not grow meanwhile. */
  async function unchanged(refusals: () => Promise<void>): Promise<void> {
    const before = await broker.lastSeq()
    await refusals()
    expect(await broker.lastSeq()).toBe(before)
  }

  describe('request bodies', () => {
    test('a body of exactly 1 MiB is read; one byte more is 413 {error}, declared or streamed', async () => {
      const exact = (size: number) => {
        const head = '{"partnerId":"padded","pad":"'
        return `${head}${'x'.repeat(size - head.length - 2)}"}`
      }
      await unchanged(async () => {
        expectRefusal(await broker.call('POST', '/register', { body: exact(MiB + 1) }), 413)
        const streamed = new ReadableStream<Uint8Array>({
          start(controller) {
            for (let i = 0; i < 4; i++) controller.enqueue(new Uint8Array(MiB / 2).fill(0x20))
            controller.close()
          },
        })
        const response = await fetch(`${broker.url}/register`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: streamed,
          duplex: 'half',
        } as RequestInit)
        expect(response.status).toBe(413)
        expect(((await response.json()) as { error: string }).error).toContain('1048576')
        // A huge declared length is refused before a byte of it is read.
        const huge = await rawRequest(
          broker.port,
          'POST /register HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 5000000000\r\n\r\n{',
        )
        expect(huge.status).toBe(413)
        expect(JSON.parse(huge.body).error).toEqual(expect.any(String))
      })
      const fits = await broker.call('POST', '/register', { body: exact(MiB) })
      expect(fits.status).toBe(200)
    })

    test('JSON nested deeper than 32 levels is refused at once (it used to cost Elysia ~40 s)', async () => {
      await unchanged(async () => {
        const started = performance.now()
        expectRefusal(await broker.call('POST', '/talk', { token: alice, body: '['.repeat(400_000) + ']'.repeat(400_000) }), 400)
        expectRefusal(await broker.call('POST', '/register', { body: `${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}` }), 400)
        expectRefusal(await broker.call('POST', '/register', { body: { partnerId: 'x', name: JSON.parse('['.repeat(40) + ']'.repeat(40)) } }), 400)
        expect(performance.now() - started).toBeLessThan(2000)
      })
    })

    test('each kind of refusal before a route names itself in `reason`', async () => {
      await unchanged(async () => {
        const token = { token: alice }
        const reasons = {
          notJson: (await broker.call('POST', '/talk', { ...token, body: '{"fromId":' })).body?.reason,
          tooLarge: (await broker.call('POST', '/register', { body: `{"partnerId":"padded","pad":"${'x'.repeat(MiB)}"}` })).body?.reason,
          wrongField: (await broker.call('POST', '/talk', { ...token, body: { fromId: 'alice', to: 'bob', content: 7 } })).body?.reason,
          noEndpoint: (await broker.call('GET', '/no/such/thing')).body?.reason,
        }
        expect(reasons).toEqual({ notJson: 'invalid_body', tooLarge: 'request_too_large', wrongField: 'invalid_request', noEndpoint: 'no_such_endpoint' })
      })
    })

    test('malformed JSON, invalid UTF-8, an empty or null body, a non-JSON content type: 400', async () => {
      await unchanged(async () => {
        const token = { token: alice }
        for (const body of ['{"fromId": ', '{fromId: "alice"}', "{'a':1}", '[1,]', 'nul', '"', '{"a":1}}', '\u0000'])
          expectRefusal(await broker.call('POST', '/talk', { ...token, body }), 400)
        expectRefusal(await broker.call('POST', '/talk', { ...token, body: new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]) }), 400)
        expectRefusal(await broker.call('POST', '/talk', { ...token, body: '' }), 400)
        expectRefusal(await broker.call('POST', '/talk', { ...token, body: 'null' }), 400)
        expectRefusal(await broker.call('POST', '/talk', { ...token, body: '[]' }), 400)
        for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', ';;', 'application/json, text/plain'])
          expectRefusal(
            await broker.call('POST', '/talk', {
              ...token,
              body: JSON.stringify({ fromId: 'alice', to: 'bob', content: 'typed' }),
              headers: { 'content-type': type },
            }),
            400,
          )
        // Extra fields (even __proto__) are ignored, never merged into anything.
        const proto = await broker.call('POST', '/partners/alice/notifications', {
          ...token,
          body: '{"__proto__":{"enabled":true},"constructor":{"prototype":{"x":1}}}',
        })
        expectRefusal(proto, 400)
      })

    })

    test('the OpenAPI document still describes each body as JSON with its schema', async () => {
      const docs = await broker.call('GET', '/docs/json')
      for (const path of ['/talk', '/register', '/listen/{id}/ack', '/conversations'])
        expect(Object.keys(docs.body.paths[path].post.requestBody.content)).toEqual(['application/json'])
      expect(docs.body.paths['/talk'].post.requestBody.content['application/json'].schema.required).toContain('fromId')
    })

    test('wrong types and missing fields are 400 naming the field', async () => {
      await unchanged(async () => {
        const cases: Array<[string, unknown, string]> = [
          ['/talk', { fromId: 5, to: 'bob', content: 'x' }, 'fromId'],
          ['/talk', { fromId: 'alice', to: 'bob', content: ['x'] }, 'content'],
          ['/talk', { fromId: 'alice', to: 'bob' }, 'content'],
          ['/talk', { fromId: 'alice', to: 'bob', content: '' }, 'content'],
          ['/talk', { fromId: 'alice', to: { id: 'bob' }, content: 'x' }, 'to'],
          ['/talk', { fromId: 'alice', to: 'bob', content: 'x', idempotencyKey: 'k'.repeat(129) }, 'idempotencyKey'],
          ['/conversations', { creatorId: 'alice', name: 'g', participants: 'bob' }, 'participants'],
          ['/conversations', { creatorId: 'alice', participants: ['bob'] }, 'name'],
          ['/partners/alice/notifications', { enabled: 'yes' }, 'enabled'],
          ['/partners/alice/status', { message: 42 }, 'message'],
          ['/listen/alice/ack', { cursor: 'abc' }, 'cursor'],
          ['/listen/alice/ack', { cursor: -1 }, 'cursor'],
          ['/listen/alice/ack', {}, 'cursor'],
          ['/unregister', {}, 'partnerId'],
          ['/conversations/group_any/members', { partnerId: 'alice', members: 'bob' }, 'members'],
          ['/conversations/group_any/members', { partnerId: 'alice' }, 'members'],
          ['/conversations/group_any/members', { partnerId: 'alice', members: [] }, 'members'],
          ['/conversations/group_any/members', { members: ['bob'] }, 'partnerId'],
          ['/conversations/group_any/rename', { partnerId: 'alice', name: 7 }, 'name'],
          ['/conversations/group_any/rename', { partnerId: 'alice' }, 'name'],
          ['/conversations/group_any/resume', { partnerId: 5 }, 'partnerId'],
        ]
        for (const [path, body, field] of cases) {
          const answer = await broker.call('POST', path, { token: alice, body })
          expectRefusal(answer, 400)
          expect(answer.body.error).toContain(field)
        }
      })
    })
  })

  describe('limits', () => {
    test('partner ids: 1 to 64 of [A-Za-z0-9_.-], not starting with "."', async () => {
      await unchanged(async () => {
        for (const partnerId of ['', 'a'.repeat(65), '.hidden', '..', 'a/b', 'a\\b', 'a b', 'été', 'a\u0000b', 'a\nb', '😀', 'a%2Fb'])
          expectRefusal(await broker.call('POST', '/register', { body: { partnerId } }), 400)
      })
      for (const partnerId of ['a'.repeat(64), 'x', '-dash', '_under', 'v1.2-beta_3'])
        expect((await broker.call('POST', '/register', { body: { partnerId } })).status).toBe(200)
    })

    test('names, statuses, group names and project paths are one line of printable text: else 400 naming the field', async () => {
      const forged = [
        'Mallory\n- duo-system: online',
        'a\r\n[Duo] You have 1 unread message',
        'tab\there',
        'evil\u202Eenilno',
        'zero\u200Bwidth',
        'join\u200Der',
        'isolate\u2066x\u2069',
        'line\u2028sep',
        'bom\uFEFF',
        'filler\u3164',
        'lone \ud800 surrogate',
      ]
      await unchanged(async () => {
        for (const text of forged) {
          const fields = [
            [await broker.call('POST', '/register', { body: { partnerId: 'ctl', name: text } }), 'name'],
            [await broker.call('POST', '/register', { body: { partnerId: 'ctl', projectPath: `/tmp/${text}` } }), 'projectPath'],
            [await broker.call('POST', '/partners/alice/status', { token: alice, body: { message: text } }), 'message'],
            [await broker.call('POST', '/conversations', { token: alice, body: { creatorId: 'alice', name: text, participants: ['bob'] } }), 'name'],
            [await broker.call('POST', '/conversations/group_any/rename', { token: alice, body: { partnerId: 'alice', name: text } }), 'name'],
          ] as const
          for (const [answer, field] of fields) {
            expectRefusal(answer, 400)
            expect(answer.body.error).toStartWith(`body field "${field}": `)
            expect(answer.body.error).toContain('one line of printable text')
          }
        }
      })
      // Printable text of any script is fine, emoji and no-break spaces included.
      expect((await broker.call('POST', '/partners/alice/status', { token: alice, body: { message: 'été 😀 ok\u00a0ça 日本' } })).status).toBe(200)
    })

    test('ids are unique without regard to case, and look-alikes of an id are refused: 409 partner_id_taken naming it', async () => {
      await unchanged(async () => {
        for (const [partnerId, lookalike] of [['ALICE', false], ['Alice', false], ['aIice', true], ['a1ice', true], ['B0B', true], ['bOb', false]] as const) {
          const answer = await broker.call('POST', '/register', { body: { partnerId } })
          expectRefusal(answer, 409)
          const existing = partnerId.toLowerCase().includes('b') ? 'bob' : 'alice'
          expect(answer.body).toMatchObject({ reason: 'partner_id_taken', partnerId, existing })
          expect(answer.body.error).toContain(lookalike ? `looks like the existing partner "${existing}"` : 'unique without regard to case')
        }
      })
      // Its own id still re-registers (with its token), and ids that merely share letters are distinct.
      expect((await broker.call('POST', '/register', { token: alice, body: { partnerId: 'alice' } })).status).toBe(200)
      for (const partnerId of ['mail', 'mall', 'alice2', 'bobby']) expect((await broker.call('POST', '/register', { body: { partnerId } })).status).toBe(200)
    })

    test('control characters in names, statuses, group names and project paths are 400', async () => {
      await unchanged(async () => {
        expectRefusal(await broker.call('POST', '/register', { body: { partnerId: 'ctl', name: 'a\u0007b' } }), 400)
        expectRefusal(await broker.call('POST', '/register', { body: { partnerId: 'ctl', projectPath: '/tmp/\u001b[31mx' } }), 400)
        expectRefusal(await broker.call('POST', '/partners/alice/status', { token: alice, body: { message: 'a\u0000' } }), 400)
        expectRefusal(
          await broker.call('POST', '/conversations', { token: alice, body: { creatorId: 'alice', name: 'g\u007f', participants: ['bob'] } }),
          400,
        )
      })
    })

    test('a group has at most 100 members and a name of at most 100 characters', async () => {
      const ids = Array.from({ length: 100 }, (_, i) => `member${String(i).padStart(3, '0')}`)
      for (const id of ids) await broker.register(id)
      const create = (participants: string[], name = 'crowd') =>
        broker.call('POST', '/conversations', { token: alice, body: { creatorId: 'alice', name, participants } })
      await unchanged(async () => {
        const tooMany = await create(ids)
        expectRefusal(tooMany, 400)
        expect(tooMany.body.error).toContain('100')
        const longName = await create(['bob'], 'n'.repeat(101))
        expectRefusal(longName, 400)
        expect(longName.body.error).toContain('100')
      })
      expect((await create(ids.slice(0, 99))).status).toBe(200)
      expect((await create(['bob'], 'n'.repeat(100))).status).toBe(200)
    })

    test('a group gains members only up to 100 in all; a rename obeys the group name limit', async () => {
      const crowd = Array.from({ length: 100 }, (_, i) => `member${String(i).padStart(3, '0')}`)
      // Registered here, or already by the group-size test (then this answers 401 and they exist).
      for (const id of crowd) expect([200, 401]).toContain((await broker.call('POST', '/register', { body: { partnerId: id } })).status)
      const created = await broker.call('POST', '/conversations', { token: alice, body: { creatorId: 'alice', name: 'growing', participants: ['bob'] } })
      const group = created.body.conversation.id
      const add = (members: string[]) => broker.call('POST', `/conversations/${group}/members`, { token: alice, body: { partnerId: 'alice', members } })
      await unchanged(async () => {
        const tooMany = await add(crowd.slice(0, 99))
        expectRefusal(tooMany, 400)
        expect(tooMany.body).toMatchObject({ reason: 'group_too_large', limit: 100 })
        expectRefusal(await add([...crowd, 'bob']), 400)
        const longName = await broker.call('POST', `/conversations/${group}/rename`, { token: alice, body: { partnerId: 'alice', name: 'n'.repeat(101) } })
        expectRefusal(longName, 400)
        expect(longName.body.error).toContain('100')
        const asOther = await broker.call('POST', `/conversations/${group}/members`, { token: alice, body: { partnerId: 'bob', members: ['member000'] } })
        expectRefusal(asOther, 403)
        expect(asOther.body.reason).toBe('acting_for_another')
      })
      expect((await add(crowd.slice(0, 98))).body.added).toHaveLength(98)
    })

    test('a message is at most 64 KiB of UTF-8: 413 naming the limit beyond', async () => {
      const talk = (content: string) => broker.call('POST', '/talk', { token: alice, body: { fromId: 'alice', to: 'bob', content } })
      await unchanged(async () => {
        const over = await talk('x'.repeat(64 * 1024 + 1))
        expectRefusal(over, 413)
        expect(over.body.error).toContain('65536')
        // 21,846 characters, but 65,538 bytes.
        expectRefusal(await talk('€'.repeat(21_846)), 413)
      })
      expect((await talk('x'.repeat(64 * 1024))).status).toBe(200)
    })

    test('DUO_MAX_MESSAGE_BYTES sets the message limit', async () => {
      const small = await startSecureBroker({ maxMessageBytes: configFromEnv({ DUO_MAX_MESSAGE_BYTES: '100' }).maxMessageBytes })
      try {
        const a = await small.register('a')
        await small.register('b')
        const talk = (content: string) => small.call('POST', '/talk', { token: a, body: { fromId: 'a', to: 'b', content } })
        const over = await talk('x'.repeat(101))
        expectRefusal(over, 413)
        expect(over.body.error).toContain('100')
        expect((await talk('x'.repeat(100))).status).toBe(200)
      } finally {
        await small.close()
      }
    })
  })

  describe('paths, queries and headers', () => {
    test('path tricks in ids are 400 {error}: dot segments, encoded slashes, NUL, bad escapes, unicode, long', async () => {
      await unchanged(async () => {
        const tricks = [...ID_PATH_TRICKS, 'a'.repeat(8000)]
        for (const trick of tricks) {
          expectRefusal(await broker.call('GET', `/listen/${trick}?after=0&wait=0`, { token: alice }), 400)
          expectRefusal(await broker.call('GET', `/conversations/${trick}/messages`, { token: alice }), 400)
          expectRefusal(await broker.call('POST', `/partners/${trick}/status`, { token: alice, body: { message: 'x' } }), 400)
          expectRefusal(await broker.call('POST', `/conversations/${trick}/members`, { token: alice, body: { partnerId: 'alice', members: ['bob'] } }), 400)
          expectRefusal(await broker.call('POST', `/conversations/${trick}/rename`, { token: alice, body: { partnerId: 'alice', name: 'x' } }), 400)
          expectRefusal(await broker.call('POST', `/conversations/${trick}/resume`, { token: broker.adminToken, body: {} }), 400)
          expectRefusal(await broker.call('POST', `/conversations/${trick}/pause`, { token: broker.adminToken, body: {} }), 400)
          expectRefusal(await broker.call('DELETE', `/partners/${trick}`, { token: broker.adminToken }), 400)
        }
      })
    })

    test('dot segments sent raw never escape the routes: a JSON 404', async () => {
      for (const path of ['/listen/alice/../../etc/passwd', '/../../../etc/passwd', '//etc/passwd', '/listen/alice/%2e%2e/%2e%2e/etc'])
        for (const method of ['GET', 'POST']) {
          const raw = await rawRequest(broker.port, `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${alice}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`)
          expect(raw.status).toBeGreaterThanOrEqual(400)
          expect(raw.status).toBeLessThan(500)
          expect(JSON.parse(raw.body).error).toEqual(expect.any(String))
        }
    })

    test('huge or malformed query values are 400 {error}', async () => {
      await unchanged(async () => {
        const queries = [
          `after=${'9'.repeat(8000)}`,
          'after=1e400',
          'after=-1',
          'after=1.5',
          'after=1&after=2',
          'after=0&wait=3601',
          'after=0&wait=NaN',
          'after=0&wait=-0.5',
          'timeout=61',
          `conversationId=${'c'.repeat(8000)}`,
          'conversationId=..%2Fx',
          'conversationId=',
        ]
        for (const query of queries) expectRefusal(await broker.call('GET', `/listen/alice?${query}`, { token: alice }), 400)
        for (const query of ['limit=0', 'limit=1001', `before=${'1'.repeat(5000)}`, 'limit=abc'])
          expectRefusal(await broker.call('GET', `/conversations/direct_alice_bob/messages?${query}`, { token: alice }), 400)
        for (const query of ['type=Nope', `partner=${'p'.repeat(65)}`, 'after=-5', 'limit=1e9'])
          expectRefusal(await broker.call('GET', `/events?${query}`, { token: broker.adminToken }), 400)
        expectRefusal(
          await broker.call('GET', '/listen/alice/stream', { token: alice, headers: { 'last-event-id': '9'.repeat(500) } }),
          400,
        )
      })
    })

    test('a cursor is a JSON number or a string of digits, nothing z.coerce would bend into one', async () => {
      await unchanged(async () => {
        for (const after of ['%20', '', '0x10', '1e2', '+1', '1.0'])
          expectRefusal(await broker.call('GET', `/listen/alice?after=${after}&wait=0`, { token: alice }), 400)
        for (const cursor of [true, false, [], [1], '', ' ', '0x1', null, { n: 1 }])
          expectRefusal(await broker.call('POST', '/listen/alice/ack', { token: alice, body: { cursor } }), 400)
      })
      expect((await broker.call('POST', '/listen/alice/ack', { token: alice, body: { cursor: '1' } })).status).toBe(200)
    })

    test('duplicate headers: two tokens are no token (401), two content types are not JSON (400)', async () => {
      await unchanged(async () => {
        const twoTokens = await rawRequest(
          broker.port,
          `GET /conversations/alice HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${alice}\r\nAuthorization: Bearer ${alice}\r\nConnection: close\r\n\r\n`,
        )
        expect(twoTokens.status).toBe(401)
        expect(JSON.parse(twoTokens.body).error).toEqual(expect.any(String))
        const body = JSON.stringify({ fromId: 'alice', to: 'bob', content: 'twice typed' })
        const twoTypes = await rawRequest(
          broker.port,
          `POST /talk HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${alice}\r\nContent-Type: application/json\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
        )
        expect(twoTypes.status).toBe(400)
        expect(JSON.parse(twoTypes.body).error).toEqual(expect.any(String))
        // Two lengths: Bun refuses the request itself, before the app, with a bare 400 (documented, not JSON).
        const twoLengths = await rawRequest(
          broker.port,
          `POST /talk HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 3\r\nConnection: close\r\n\r\n{}`,
        )
        expect(twoLengths.status).toBe(400)
      })
    })

    test('a request line or headers past 16 KiB are refused by Bun with 431 (before the app; not JSON)', async () => {
      const response = await fetch(`${broker.url}/listen/${'a'.repeat(17_000)}`)
      expect(response.status).toBe(431)
    })

    test('unknown methods and paths are a JSON 404', async () => {
      for (const [method, path] of [['DELETE', '/talk'], ['PUT', '/register'], ['PATCH', '/partners/alice/status'], ['GET', '/admin'], ['OPTIONS', '/talk']] as const)
        expectRefusal(await broker.call(method, path, { token: alice }), 404)
    })
  })

  slowTest('a refused oversized body closes its connection, and a client stuck mid-request cannot hold a stop open', async () => {
    const other = await startSecureBroker()
    const refused = await rawRequest(
      other.port,
      `POST /register HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${2 * MiB}\r\n\r\n{"partnerId":`,
    )
    expect(refused.status).toBe(413)
    expect(refused.head.toLowerCase()).toContain('connection: close')
    const stuck = connect(other.port, '127.0.0.1', () => stuck.write('POST /talk HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{"a"'))
    stuck.on('error', () => {})
    await Bun.sleep(100)
    const started = Date.now()
    await other.close()
    expect(Date.now() - started).toBeLessThan(6000)
    stuck.destroy()
  })

  test('nothing a client sent created a file: the broker directory holds what it held', () => {
    const now = readdirSync(broker.dir).sort()
    expect(now).toEqual(filesBefore)
    expect(now.every((name) => name.startsWith('duo.db'))).toBe(true)
  })
})
