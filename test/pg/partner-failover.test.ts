// The real partner (MCP tools over the SDK client) with BROKER_URL listing two brokers of one PostgreSQL log:
// when the one it uses is killed, talk and listen go on through the other, with the token and the cursor.
import { afterAll, expect, test } from 'bun:test'
import { call, cleanTempDirs, connectPartner, partnerConfig, spawnBroker, type SpawnedBroker, tempProject } from '../partner/helpers.ts'
import { freshDatabase, type TestDatabase } from './helpers.ts'

let database: TestDatabase | undefined
const brokers: SpawnedBroker[] = []
afterAll(async () => {
  for (const broker of brokers) broker.proc.kill('SIGKILL')
  await Promise.all(brokers.map((b) => b.proc.exited))
  await database?.drop()
  cleanTempDirs()
})

type Heard = { timedOut: boolean; messages: Array<{ content: string; seq: number }> }

test('talk and listen go on through the second broker after the first is killed, nothing missed or shown twice', async () => {
  database = await freshDatabase('duo_partner')
  brokers.push(await spawnBroker(database.url, { DUO_AUTH: 'token' }), await spawnBroker(database.url, { DUO_AUTH: 'token' }))
  const urls = brokers.map((b) => b.url)
  const ann = await connectPartner(partnerConfig(tempProject('ann'), urls[0]!, { brokerUrls: urls }))
  const ben = await connectPartner(partnerConfig(tempProject('ben'), urls[0]!, { brokerUrls: urls }))
  try {
    const before = await call(ann.client, 'talk', { message: 'before the kill', to: 'ben' })
    expect(before.isError).toBeFalsy()
    const first = (await call(ben.client, 'listen', {})).structuredContent as Heard
    expect(first.messages.map((m) => m.content)).toEqual(['before the kill'])

    brokers[0]!.proc.kill('SIGKILL')
    await brokers[0]!.proc.exited

    const after = await call(ann.client, 'talk', { message: 'after the kill', to: 'ben' })
    expect(after.isError).toBeFalsy()
    expect(ann.running.partner.client.baseUrl).toBe(urls[1]!)
    const second = (await call(ben.client, 'listen', { timeout: 10 })).structuredContent as Heard
    expect(second.messages.map((m) => m.content)).toEqual(['after the kill'])
    const quiet = (await call(ben.client, 'listen', { timeout: 0 })).structuredContent as Heard
    expect(quiet).toMatchObject({ timedOut: true, messages: [] })
  } finally {
    await ann.close()
    await ben.close()
  }
}, 60_000)
