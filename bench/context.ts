// What every scenario is given: the size of the run, a scratch directory, the sync level, the floor's figures.
import { join } from 'node:path'
import type { Child } from './procs.ts'
import { spawnBroker } from './procs.ts'
import type { Outcome } from './report.ts'

export type Floor = { sequentialRps: number; concurrentRps: number }

export type Context = {
  quick: boolean
  tmp: string
  sync: 'full' | 'normal'
  floor?: Floor
  /** A fresh broker on a new scratch file (rate limits off unless asked for). */
  broker(name: string, options?: { rateLimits?: boolean }): Promise<Child>
}

export function createContext(quick: boolean, tmp: string, sync: 'full' | 'normal'): Context {
  let n = 0
  return {
    quick,
    tmp,
    sync,
    broker: (name, options = {}) => spawnBroker({ db: join(tmp, `${name}-${++n}.db`), sync, ...options }),
  }
}

export type Scenario = (ctx: Context) => Promise<Omit<Outcome, 'seconds'>>

export const blank = (scenario: string): Omit<Outcome, 'seconds'> => ({
  scenario,
  figures: [],
  lost: 0,
  duplicated: 0,
  errors: 0,
  notes: [],
})
