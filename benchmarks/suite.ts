/**
 * What a benchmark suite is given and returns. A suite measures some rows, each beside a baseline
 * measured in the same run where one exists, and may add charts for the HTML report.
 */
import type { Backend } from '../src/flame/backend.js';
import type { Comparison, Row } from './report.js';

export type BackendName = 'process' | 'local' | 'kubernetes';

/** A chart for the HTML report: a latency distribution, or bars (e.g. throughput per runner count). */
export type Chart =
  | { kind: 'latency'; title: string; unit: string; series: { name: string; points: [percentile: number, value: number][] }[] }
  | { kind: 'bars'; title: string; unit: string; bars: { label: string; value: number }[] };

export interface BenchContext {
  /** The backend the pools of this run use. */
  backendName: BackendName;
  /** A fresh backend of that kind (one per pool). */
  backend(): Backend;
  /** Runner count of the "N runners" rows. */
  runners: number;
  /** Measuring time of the whole suite, split over its phases (boots and warm-ups come on top). */
  durationMs: number;
  /** Smaller counts, for a smoke check. */
  quick: boolean;
  /** What is being measured now, and how far the suite is (0..1) when it knows. */
  progress(label: string, fraction?: number): void;
  chart(chart: Chart): void;
}

export interface Suite {
  name: string;
  /** Backends this suite measures (default: any); it is skipped on others. */
  backends?: readonly BackendName[];
  /** Run by `flame-actors bench` without `--suite` (the rest run with `--suite all` or by name). */
  byDefault?: boolean;
  comparisons: Comparison[];
  run(ctx: BenchContext): Promise<Row[]>;
}
