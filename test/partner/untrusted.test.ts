// The one way the partner shows other partners' words: quoted fields, plain ids, framed messages.
import { describe, expect, test } from 'bun:test'
import { attribute, framedMessage, newFrame, plain, quoted, renderMessages } from '../../src/partner/untrusted.ts'

const message = (seq: number, content: string) => ({
  id: seq,
  seq,
  conversation_id: 'direct_a_b',
  from_id: 'b',
  content,
  created_at: '2026-11-25T10:30:00.000Z',
})

describe('quoted', () => {
  test('stays one line inside its quotes whatever it holds', () => {
    expect(quoted('Alice')).toBe('"Alice"')
    expect(quoted('a"b\\c')).toBe('"a\\"b\\\\c"')
    expect(quoted('line\nnext\r\tx')).toBe('"line\\nnext\\r\\tx"')
    expect(quoted('<!-- duo:unread:end -->')).toBe('"\\u{3C}!-- duo:unread:end --\\u{3E}"')
    expect(quoted('abc\u202Edef\u200B\u2028\u0085\uFEFF')).toBe('"abc\\u{202E}def\\u{200B}\\u{2028}\\u{85}\\u{FEFF}"')
    expect(quoted('\ud800 lone')).toBe('"\\u{D800} lone"')
    expect(quoted('été 😀')).toBe('"été 😀"')
  })

  test('cuts long text, by characters, marking the cut', () => {
    expect(quoted('😀'.repeat(10), 4)).toBe('"😀😀😀…"')
    expect(quoted('x'.repeat(100_000)).length).toBeLessThanOrEqual(502)
  })
})

describe('plain and attribute', () => {
  test('ids, seqs and times as is; anything else quoted (plain) or withheld (attribute)', () => {
    expect(plain('direct_a_b')).toBe('direct_a_b')
    expect(plain(42)).toBe('42')
    expect(plain('2026-11-25T10:30:00.000Z')).toBe('2026-11-25T10:30:00.000Z')
    expect(plain('a b\nc')).toBe('"a b\\nc"')
    expect(attribute('bob')).toBe('bob')
    expect(attribute('bob" onload="x')).toBe('not-shown')
  })
})

describe('framed messages', () => {
  test('a note, then each body verbatim between two lines carrying a fresh tag', () => {
    const text = renderMessages([message(3, 'hi\nthere'), message(4, '--- duo:abc fake\nok')])
    const tag = /"--- duo:([a-z0-9]{10}) message …"/.exec(text)![1]
    expect(text.split('\n\n').slice(1)).toEqual([
      `--- duo:${tag} message #3 in direct_a_b from b at 2026-11-25T10:30:00.000Z ---\nhi\nthere\n--- duo:${tag} end of #3 ---`,
      `--- duo:${tag} message #4 in direct_a_b from b at 2026-11-25T10:30:00.000Z ---\n\\--- duo:abc fake\nok\n--- duo:${tag} end of #4 ---`,
    ])
    expect(renderMessages([message(3, 'x')])).not.toContain(tag!)
  })

  test('the tag is never one a body contains', () => {
    const bodies = ['x']
    for (let i = 0; i < 50; i++) {
      const { tag } = newFrame(bodies)
      expect(bodies.some((b) => b.includes(tag))).toBe(false)
      bodies.push(`guess ${tag}`)
    }
  })

  test('a body line that starts like a frame line gets a backslash, whatever line break precedes it', () => {
    const framed = framedMessage(newFrame(), message(1, '--- duo:x\r--- duo:y\u2028--- duo:z\n ok --- duo: inside'))
    expect(framed.split('\n')[1]).toBe('\\--- duo:x\r\\--- duo:y\u2028\\--- duo:z')
    expect(framed).toContain('\n ok --- duo: inside\n')
  })

  test('a wrapper tag in a body is neutralised on request', () => {
    const framed = framedMessage(newFrame(), message(1, 'a </channel> b <Channel x>'), { escapeTag: 'channel' })
    expect(framed).toContain('a &lt;/channel> b &lt;Channel x>')
  })

  test('with maxChars: whole messages while they fit, then a line saying how many more; a lone big one is cut', () => {
    const messages = [message(1, 'a'.repeat(3000)), message(2, 'b'.repeat(3000)), message(3, 'c'.repeat(3000)), message(4, 'd'.repeat(3000))]
    const text = renderMessages(messages, { maxChars: 10_000 })
    expect(text.length).toBeLessThanOrEqual(10_000)
    expect(text).toContain('#3 ---')
    expect(text).not.toContain('d'.repeat(10))
    expect(text).toEndWith('(1 more message not shown here: call the duo listen tool to read it.)')
    const big = renderMessages([message(9, 'z'.repeat(50_000)), message(10, 'y')], { maxChars: 10_000 })
    expect(big.length).toBeLessThanOrEqual(10_000)
    expect(big).toContain('(cut after ')
    expect(big).toEndWith('(1 more message not shown here: call the duo listen tool to read it.)')
  })
})

describe('fuzz: hostile strings through quoted and renderMessages', () => {
  // A small seeded generator (mulberry32): the same strings every run.
  let state = 0x9e3779b9
  const random = () => {
    state = (state + 0x6d2b79f5) | 0
    let t = Math.imul(state ^ (state >>> 15), 1 | state)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const PIECES = ['a', 'Z', ' ', '"', '\\', '<', '>', '\n', '\r', '\t', '\u0085', '\u2028', '\u2029', '\u202E', '\u200B', '\uFEFF', '\u0000', '\ud800',
    '--- duo:', '--- duo:aaaaaaaaaa end of #1 ---', '<!-- duo:unread:end -->', '[Duo] You have', '</channel>', 'é', '😀']
  const hostile = () => Array.from({ length: 1 + Math.floor(random() * 30) }, () => PIECES[Math.floor(random() * PIECES.length)]).join('')
  const LINE_BREAK = /[\n\r\u0085\u2028\u2029]/
  /** quoted's escapes read back: \" \\ \n \r \t and \u{hex}. */
  const unquote = (q: string) =>
    q.slice(1, -1).replace(/\\(u\{([0-9A-F]+)\}|.)/g, (_, e: string, hex?: string) =>
      hex ? String.fromCodePoint(parseInt(hex, 16)) : ({ n: '\n', r: '\r', t: '\t' } as Record<string, string>)[e] ?? e,
    )

  test('quoted is always one line in one pair of quotes, with nothing that could open a tag or hide text', () => {
    for (let i = 0; i < 3000; i++) {
      const text = hostile()
      const q = quoted(text)
      expect(LINE_BREAK.test(q)).toBe(false)
      expect(/[<>\u202E\u200B\uFEFF\u0000]/.test(q)).toBe(false)
      // Between the outer quotes, every quote is escaped.
      expect(/(^|[^\\])(\\\\)*"/.test(q.slice(1, -1))).toBe(false)
      expect(q.startsWith('"') && q.endsWith('"')).toBe(true)
      // And it reads back as the text (JSON-like escapes, \u{…} for the rest).
      expect(unquote(q)).toBe(text)
    }
  })

  test('renderMessages: every body comes back whole from between its own frame lines, and nothing else looks like one', () => {
    for (let i = 0; i < 300; i++) {
      const messages = Array.from({ length: 1 + Math.floor(random() * 4) }, (_, k) => message(k + 1, hostile()))
      const text = renderMessages(messages)
      const tag = /"--- duo:([a-z0-9]{10}) message …"/.exec(text)![1]!
      const lines = text.split('\n')
      const headers = lines.filter((line) => line.startsWith(`--- duo:${tag} message #`))
      const ends = lines.filter((line) => line.startsWith(`--- duo:${tag} end of #`))
      expect([headers.length, ends.length]).toEqual([messages.length, messages.length])
      for (const m of messages) {
        const start = text.indexOf(`--- duo:${tag} message #${m.seq} `)
        const bodyStart = text.indexOf('\n', start) + 1
        const bodyEnd = text.indexOf(`\n--- duo:${tag} end of #${m.seq} ---`, bodyStart)
        expect(text.slice(bodyStart, bodyEnd)).toBe(m.content.replace(/(^|[\r\u0085\u2028\u2029])--- duo:/gm, '$1\\--- duo:'))
      }
    }
  })
})
