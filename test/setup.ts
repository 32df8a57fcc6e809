// Test preload: bunfig's [test] timeout is ignored by Bun 1.4, so the default lives here.
import { setDefaultTimeout } from 'bun:test'

setDefaultTimeout(20_000)
