// What a scenario reports, and how the run prints it: a table for people, one BENCH_JSON line for machines.

export type Target = { op: '<=' | '>=' | '<'; value: number }
export type Figure = {
  metric: string
  value: number
  unit: string
  target?: Target
  /** Throughput as a fraction of the floor measured in the same run. */
  ratio?: number
  note?: string
}
export type Outcome = {
  scenario: string
  figures: Figure[]
  /** Acknowledged messages missing from the log or from a listener that should have had them. */
  lost: number
  /** Messages stored or delivered more than once. */
  duplicated: number
  /** Requests answered with a non-2xx status or failed. */
  errors: number
  notes: string[]
  seconds: number
  /** Set when the scenario could not run to the end (its error, or a missing tool). */
  failed?: string
}

export const pass = (f: Figure): boolean | undefined => {
  if (!f.target || !Number.isFinite(f.value)) return f.target ? false : undefined
  const { op, value } = f.target
  return op === '<=' ? f.value <= value : op === '<' ? f.value < value : f.value >= value
}

const number = (value: number, unit: string): string => {
  if (!Number.isFinite(value)) return 'n/a'
  if (unit === 'ms') return value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : value.toFixed(0)
  if (unit === 'MB' || unit === 's' || unit === 'x') return value.toFixed(2)
  return Math.round(value).toLocaleString('en-US')
}
const withUnit = (value: number, unit: string) => `${number(value, unit)}${unit === 'count' ? '' : ` ${unit}`}`

export function table(outcomes: Outcome[]): string {
  const rows: string[][] = [['scenario', 'metric', 'value', 'vs floor', 'target', 'result']]
  for (const o of outcomes) {
    if (o.failed) rows.push([o.scenario, 'did not complete', '', '', '', `FAIL: ${o.failed}`])
    for (const f of o.figures) {
      const ok = pass(f)
      rows.push([
        o.scenario,
        f.metric,
        withUnit(f.value, f.unit),
        f.ratio === undefined ? '' : `${(f.ratio * 100).toFixed(0)}%`,
        f.target ? `${f.target.op} ${withUnit(f.target.value, f.unit)}` : '',
        ok === undefined ? '' : ok ? 'PASS' : 'MISS',
      ])
    }
    const integrity = `lost ${o.lost}, duplicated ${o.duplicated}, errors ${o.errors}`
    rows.push([o.scenario, `integrity (${o.seconds.toFixed(1)} s)`, integrity, '', '0 lost, 0 dup', o.lost + o.duplicated === 0 ? 'PASS' : 'FAIL'])
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)))
  const line = (r: string[]) => r.map((cell, c) => (c === 2 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ').trimEnd()
  const out = [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  ')]
  let previous = ''
  for (const r of rows.slice(1)) {
    out.push(line(r[0] === previous ? ['', ...r.slice(1)] : r))
    previous = r[0]!
  }
  const notes = outcomes.flatMap((o) => o.notes.map((n) => `  ${o.scenario}: ${n}`))
  return [...out, ...(notes.length ? ['', 'notes:', ...notes] : [])].join('\n')
}

export function jsonLine(outcomes: Outcome[], machine: Record<string, unknown>, ok: boolean): string {
  return `BENCH_JSON ${JSON.stringify({
    ok,
    machine,
    scenarios: outcomes.map((o) => ({
      ...o,
      figures: o.figures.map((f) => ({ ...f, pass: pass(f) })),
    })),
  })}`
}
