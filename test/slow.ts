// Slow tests (real waits of a second or more, big loads): `bun test` runs them; `DUO_FAST=1 bun test` skips them.
import { describe, test } from 'bun:test'

export const fastOnly = process.env.DUO_FAST === '1'
/** A test that takes a second or more by nature (it waits out a real timeout, or loads the broker). */
export const slowTest = fastOnly ? test.skip : test
export const slowDescribe = fastOnly ? describe.skip : describe
