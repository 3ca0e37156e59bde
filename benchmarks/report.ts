/** Benchmark rows, their table and their JSON. */

export interface Row {
  name: string;
  value: number;
  unit: string;
  /** Spread over the repetitions the value is the median of (lowest and highest). */
  min?: number;
  max?: number;
  /** What was measured, in a few words. */
  detail?: string;
  /** Name of the row measured in the same run that this one is compared with. */
  baseline?: string;
  /**
   * value / baseline value; a suite that measures a row and its baseline in pairs sets it itself,
   * as the median of the pairs' ratios, and it is kept.
   */
  ratio?: number;
  /** The target the issue sets, e.g. ">= 0.8" (ratio) or ">= 100000" (value). */
  target?: string;
  met?: boolean;
}

export interface Comparison {
  name: string;
  baseline?: string;
  /** Checks the ratio (or the value when there is no baseline). */
  target?: { op: '>=' | '<='; limit: number };
}

/** Adds ratio and target fields to rows per the comparisons. */
export function compare(rows: Row[], comparisons: Comparison[]): Row[] {
  const byName = new Map(rows.map((r) => [r.name, r]));
  for (const c of comparisons) {
    const row = byName.get(c.name);
    if (!row) continue;
    let subject = row.value;
    if (c.baseline) {
      const base = byName.get(c.baseline);
      if (!base) continue;
      row.baseline = c.baseline;
      row.ratio ??= round(row.value / base.value, 3);
      subject = row.ratio;
    }
    if (c.target) {
      row.target = `${c.baseline ? 'ratio ' : ''}${c.target.op} ${c.target.limit}`;
      row.met = c.target.op === '>=' ? subject >= c.target.limit : subject <= c.target.limit;
    }
  }
  return rows;
}

export function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
}

export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

export function table(rows: Row[]): string {
  const head = ['benchmark', 'value', 'unit', 'spread', 'baseline', 'ratio', 'target', 'met', 'what'];
  const num = (x: number) => x.toLocaleString('en-US', { maximumFractionDigits: 1 });
  const body = rows.map((r) => [
    r.name,
    num(r.value),
    r.unit,
    r.min === undefined || r.max === undefined ? '' : `${num(r.min)}-${num(r.max)}`,
    r.baseline ?? '',
    r.ratio === undefined ? '' : r.ratio.toFixed(2),
    r.target ?? '',
    r.met === undefined ? '' : r.met ? 'yes' : 'NO',
    r.detail ?? '',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 1 || i === 5 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].map((l) => l.trimEnd()).join('\n');
}
