// The views under conversation control: hop counts, pauses, resumes, members added, renames and retirements.
import { afterAll, afterEach, describe, expect, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { auditFile } from '../../src/cli/audit-core.ts'
import type { DuoEvent } from '../../src/events/schema.ts'
import * as conversations from '../../src/projections/conversations.ts'
import * as partners from '../../src/projections/partners.ts'
import { openStore } from '../../src/store.ts'
import { closeStores, direct, group, left, registered, sent, storeWithClock } from './given.ts'

afterEach(closeStores)
const dir = mkdtempSync(join(tmpdir(), 'duo-control-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const human = (partnerId: string): DuoEvent => ({
  type: 'PartnerRegistered',
  data: { partnerId, name: partnerId, projectPath: null, kind: 'human' },
})
const people = [registered('alice'), registered('bob'), registered('carol'), human('hugo')]

describe('the hop count', () => {
  test('counts agent messages, and a human message or a resume sets it back to 0', async () => {
    const { store, given } = storeWithClock()
    const hops = () => store.views.conversations.get('group_1')!.hops
    await given(...people, group('group_1', 'Team', ['alice', 'bob', 'hugo']), sent('group_1', 'alice'), sent('group_1', 'bob'))
    expect(hops()).toBe(2)
    await given({ type: 'MessageSent', data: { conversationId: 'group_1', fromId: 'hugo', content: 'stop', fromKind: 'human' } })
    expect(hops()).toBe(0)
    await given(sent('group_1', 'alice'), { type: 'ConversationPaused', data: { conversationId: 'group_1', hops: 1 } })
    expect(store.views.conversations.get('group_1')).toMatchObject({ hops: 1, is_paused: 1 })
    await given({ type: 'ConversationResumed', data: { conversationId: 'group_1' } })
    expect(store.views.conversations.get('group_1')).toMatchObject({ hops: 0, is_paused: 0 })
  })
})

describe('members added', () => {
  test('join the group; one who left comes back as a current member', async () => {
    const { store, given } = storeWithClock()
    await given(...people, group('group_1', 'Team', ['alice', 'bob']), left('group_1', 'bob'))
    expect(store.views.conversations.members('group_1')).toEqual(['alice'])
    await given({ type: 'ParticipantsAdded', data: { conversationId: 'group_1', addedBy: 'alice', partnerIds: ['carol', 'bob'] } })
    expect(store.views.conversations.members('group_1').sort()).toEqual(['alice', 'bob', 'carol'])
    expect(store.views.conversations.groupCount('bob')).toBe(1)
    expect(store.views.conversations.forPartner('carol').map((c) => c.id)).toEqual(['group_1'])
  })
})

describe('a rename', () => {
  test('changes the name everyone sees', async () => {
    const { store, given } = storeWithClock()
    await given(...people, group('group_1', 'Team', ['alice', 'bob']))
    await given({ type: 'ConversationRenamed', data: { conversationId: 'group_1', name: 'Core', renamedBy: 'bob' } })
    expect(store.views.conversations.get('group_1')!.name).toBe('Core')
  })
})

describe('a retired partner', () => {
  test('leaves the listing and its token lookup, but stays readable by id with its messages', async () => {
    const { store, given, at } = storeWithClock()
    await given(
      registered('alice'),
      registered('bob', { tokenHash: 'b'.repeat(64) }),
      direct('direct_alice_bob', 'alice', 'bob'),
      sent('direct_alice_bob', 'bob', 'bye'),
      { type: 'PartnerRetired', data: { partnerId: 'bob' } },
    )
    expect(store.views.partners.all().map((p) => p.id)).toEqual(['alice'])
    expect(store.views.partners.count()).toBe(1)
    expect(store.views.partners.byTokenHash('b'.repeat(64))).toBeNull()
    expect(store.views.partners.get('bob')).toMatchObject({ id: 'bob', retired_at: at() })
    expect(store.views.messages.history('direct_alice_bob', 10).map((m) => m.content)).toEqual(['bye'])
  })
})

describe('a log with every control event', () => {
  test('rebuilds into the same views (audit)', async () => {
    const path = join(dir, 'control.db')
    const store = openStore({ path, sync: 'normal', rules: { maxHops: 3 } })
    const run = async (...commands: Parameters<typeof store.commands.execute>[0][]) => {
      for (const command of commands) {
        const result = await store.commands.execute(command)
        if (!result.ok) throw new Error(`${command.kind}: ${JSON.stringify(result.rejection)}`)
      }
    }
    await run(
      ...['alice', 'bob', 'carol', 'dave'].map((partnerId) => ({ kind: 'register' as const, partnerId })),
      { kind: 'register', partnerId: 'hugo', partnerKind: 'human' },
      { kind: 'createGroup', creatorId: 'alice', name: 'Team', participants: ['bob', 'hugo'], groupId: 'group_1' },
      ...[0, 1, 2].map((i) => ({ kind: 'talk' as const, fromId: i % 2 ? 'bob' : 'alice', conversationId: 'group_1', content: `m${i}` })),
      { kind: 'talk', fromId: 'hugo', conversationId: 'group_1', content: 'go on' },
      ...[0, 1, 2].map((i) => ({ kind: 'talk' as const, fromId: i % 2 ? 'alice' : 'bob', to: i % 2 ? 'bob' : 'alice', content: `d${i}` })),
      { kind: 'resume', conversationId: 'direct_alice_bob' },
      { kind: 'addMembers', partnerId: 'bob', conversationId: 'group_1', members: ['carol', 'dave'] },
      { kind: 'leave', partnerId: 'dave', conversationId: 'group_1' },
      { kind: 'addMembers', partnerId: 'carol', conversationId: 'group_1', members: ['dave'] },
      { kind: 'rename', partnerId: 'dave', conversationId: 'group_1', name: 'Team 2' },
      { kind: 'retire', partnerId: 'bob' },
    )
    const types = new Set(store.log.readAfter(0, 1000).map((e) => e.type))
    for (const type of ['ConversationPaused', 'ConversationResumed', 'ParticipantsAdded', 'ConversationRenamed', 'PartnerRetired'])
      expect(types).toContain(type as never)
    expect(store.views.conversations.get('direct_alice_bob')).toMatchObject({ is_archived: 1, hops: 0, is_paused: 0 })
    const report = await auditFile(path)
    expect(report.differences).toEqual([])
    expect(report.ok).toBe(true)
    await store.close()
  })
})

describe('a log written before conversation control', () => {
  test('migrates to views that audit finds equal to a rebuild: the messages since the last human one count as hops', async () => {
    const path = join(dir, 'old.db')
    const first = openStore({ path, sync: 'normal', rules: { maxHops: 0 } })
    await first.log.transact(() =>
      first.log.append([
        ...people,
        direct('direct_alice_bob', 'alice', 'bob'),
        ...Array.from({ length: 3 }, () => sent('direct_alice_bob', 'alice')),
        { type: 'MessageSent', data: { conversationId: 'direct_alice_bob', fromId: 'hugo', content: 'hi', fromKind: 'human' } },
        ...Array.from({ length: 7 }, () => sent('direct_alice_bob', 'bob')),
      ]),
    )
    await first.close()
    // Back to the schema of before: the new columns gone, their steps not yet run.
    const { Database } = await import('bun:sqlite')
    const db = new Database(path)
    db.run('ALTER TABLE conversations DROP COLUMN hops; ALTER TABLE conversations DROP COLUMN is_paused; ALTER TABLE conversations DROP COLUMN paused_by')
    db.run('ALTER TABLE partners DROP COLUMN retired_at')
    // The steps that add them: the last one of the partners, and of the conversations the one adding hops and those after it.
    expect(partners.MIGRATIONS.at(-1)).toContain('retired_at')
    const hopsStep = conversations.MIGRATIONS.findIndex((step) => step.includes('ADD COLUMN hops'))
    expect(conversations.MIGRATIONS[hopsStep + 1]).toContain('paused_by')
    db.run("UPDATE duo_schema SET version = ? WHERE part = 'conversations'", [hopsStep])
    db.run("UPDATE duo_schema SET version = ? WHERE part = 'partners'", [partners.MIGRATIONS.length - 1])
    db.close()

    const store = openStore({ path, sync: 'normal' })
    expect(store.views.conversations.get('direct_alice_bob')).toMatchObject({ hops: 7, is_paused: 0 })
    expect(store.views.partners.get('alice')).toMatchObject({ kind: 'agent', retired_at: null })
    await store.close()
    expect((await auditFile(path)).ok).toBe(true)
  })
})
