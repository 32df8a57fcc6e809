// What the partner's tools say under conversation control: a pause, a retired partner, a rate limit, new members, a rename.
import { afterAll, describe, expect, test } from 'bun:test'
import type { RunningBroker } from '../../src/http/server.ts'
import { call, type ConnectedPartner, cleanTempDirs, connectPartner, inProcessBroker, partnerConfig, tempProject, textOf } from './helpers.ts'

const brokers: RunningBroker[] = []
const open: ConnectedPartner[] = []
afterAll(async () => {
  for (const p of open.splice(0)) await p.close()
  for (const b of brokers) await b.stop()
  cleanTempDirs()
})

async function setup(env: Record<string, string>, ...names: string[]) {
  const broker = await inProcessBroker(env)
  brokers.push(broker)
  const partners: ConnectedPartner[] = []
  for (const name of names) {
    const connected = await connectPartner(partnerConfig(tempProject(name), broker.url))
    open.push(connected)
    partners.push(connected)
  }
  const operator = (method: string, path: string, body?: unknown) =>
    fetch(broker.url + path, {
      method,
      headers: { authorization: `Bearer ${broker.adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    })
  return { broker, partners, operator }
}

describe('a conversation paused by the loop guard', () => {
  test('talk says to stop and wait for the human, list_conversations shows it, and a resume lets the agents go on', async () => {
    const { partners, operator } = await setup({ DUO_MAX_HOPS: '2' }, 'ping', 'pong')
    const [ping, pong] = partners as [ConnectedPartner, ConnectedPartner]
    expect((await call(ping.client, 'talk', { message: 'Thanks!', to: 'pong' })).isError).toBeFalsy()
    expect((await call(pong.client, 'talk', { message: 'You are welcome!', to: 'ping' })).isError).toBeFalsy()

    const refused = await call(ping.client, 'talk', { message: 'No, thank YOU!', to: 'pong' })
    expect(refused.isError).toBe(true)
    const text = textOf(refused)
    expect(text).toContain('PAUSED direct_ping_pong')
    expect(text).toContain('Stop sending messages there now')
    expect(text).toContain('Tell your human')
    expect(text).toContain('Your message was not sent.')

    const listed = textOf(await call(pong.client, 'list_conversations'))
    expect(listed).toContain('(PAUSED by the loop guard')
    expect(listed).toContain('Do not post into a paused conversation')

    expect((await operator('POST', '/conversations/direct_ping_pong/resume', {})).status).toBe(200)
    expect(textOf(await call(pong.client, 'list_conversations'))).not.toContain('PAUSED')
    expect((await call(ping.client, 'talk', { message: 'Back to work.', to: 'pong' })).isError).toBeFalsy()

    // Paused by a person rather than the guard: the model is told so.
    expect((await operator('POST', '/conversations/direct_ping_pong/pause', {})).status).toBe(200)
    const held = textOf(await call(pong.client, 'talk', { message: 'ok', to: 'ping' }))
    expect(held).toContain('A person (the Duo operator) has PAUSED direct_ping_pong')
    expect(held).toContain('Tell your human')
  })
})

describe('a retired partner', () => {
  test('is no longer the "only other partner"; messaging it, or acting as it, says it was retired', async () => {
    const { partners, operator } = await setup({}, 'stays', 'goes', 'third')
    const [stays, goes, third] = partners as [ConnectedPartner, ConnectedPartner, ConnectedPartner]
    expect(textOf(await call(stays.client, 'talk', { message: 'hello?' }))).toContain('2 other partners')
    expect((await operator('DELETE', '/partners/third')).status).toBe(200)

    // One other partner left in service: talk without `to` goes to it.
    const sent = await call(stays.client, 'talk', { message: 'just you and me' })
    expect(sent.isError).toBeFalsy()
    expect((sent.structuredContent as { conversationId: string }).conversationId).toBe('direct_goes_stays')
    expect(textOf(await call(stays.client, 'list_partners'))).not.toContain('third')

    const toRetired = await call(goes.client, 'talk', { message: 'are you there?', to: 'third' })
    expect(toRetired.isError).toBe(true)
    expect(textOf(toRetired)).toContain('Partner "third" was retired by the Duo operator')

    const asRetired = await call(third.client, 'talk', { message: 'I am still here', to: 'stays' })
    expect(asRetired.isError).toBe(true)
    expect(textOf(asRetired)).toContain('This partner ("third") was retired by the Duo operator')
  })
})

describe('a rate limit', () => {
  test('talk says how long to wait and that nothing was sent', async () => {
    const { partners } = await setup({ DUO_RATE_TALK_PER_MIN: '2' }, 'fast', 'slow')
    const [fast] = partners as [ConnectedPartner]
    for (let i = 0; i < 2; i++) expect((await call(fast.client, 'talk', { message: `m${i}`, to: 'slow' })).isError).toBeFalsy()
    const refused = await call(fast.client, 'talk', { message: 'one more', to: 'slow' })
    expect(refused.isError).toBe(true)
    expect(textOf(refused)).toMatch(/limiting how fast you send .*Nothing was done\. Wait 30 s before trying again/)
  })
})

describe('group membership', () => {
  test('add_members and rename_conversation change the group, and say so', async () => {
    const { partners } = await setup({}, 'lead', 'dev', 'qa')
    const [lead, dev, qa] = partners as [ConnectedPartner, ConnectedPartner, ConnectedPartner]
    const created = await call(lead.client, 'create_conversation', { name: 'Crew', participants: 'dev' })
    const group = (created.structuredContent as { conversationId: string }).conversationId

    const added = await call(dev.client, 'add_members', { conversation: group, partners: 'qa, lead' })
    expect(added.isError).toBeFalsy()
    expect(textOf(added)).toContain(`Added qa to ${group}`)
    expect(added.structuredContent).toEqual({ conversationId: group, added: ['qa'] })
    expect(textOf(await call(dev.client, 'add_members', { conversation: group, partners: 'qa' }))).toContain('already in')

    const renamed = await call(qa.client, 'rename_conversation', { conversation: group, name: 'Release crew' })
    expect(textOf(renamed)).toContain('is now called "Release crew"')
    expect(textOf(await call(lead.client, 'list_conversations'))).toContain('"Release crew"')

    const direct = await call(lead.client, 'talk', { message: 'hi', to: 'dev' })
    const directId = (direct.structuredContent as { conversationId: string }).conversationId
    const refused = await call(lead.client, 'add_members', { conversation: directId, partners: 'qa' })
    expect(refused.isError).toBe(true)
    expect(textOf(refused)).toContain('Create a group with create_conversation')
    expect((await call(lead.client, 'add_members', { conversation: group, partners: '.bad' })).isError).toBe(true)
  })
})
