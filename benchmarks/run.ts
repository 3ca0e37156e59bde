/**
 * The benchmark suites, and running a selection of them. `flame-actors bench` (src/cli/bench.ts)
 * and `npm run bench` (the same command with `--suite all`) both go through `runBenchmarks`.
 *
 * Registering a suite takes two lines, an import and a push:
 *
 *   import { tlsBenchmarks, tlsComparisons } from './tls.bench.js';
 *   suites.push({ name: 'tls', comparisons: tlsComparisons, run: (ctx) => tlsBenchmarks(ctx.quick ? { ... } : { ... }, ctx.progress) });
 *
 * `backends: LOCAL_ONLY` marks a suite that forks its own local processes whatever the backend.
 */
import { clusterBenchmarks, clusterComparisons } from './cluster.bench.js';
import { emulatorBenchmarks, emulatorComparisons } from './emulator.bench.js';
import { flameBenchmarks, flameComparisons } from './flame.bench.js';
import { k8sBenchmarks, k8sComparisons } from './k8s.bench.js';
import { peersBenchmarks, peersComparisons } from './peers.bench.js';
import { startupBenchmarks, startupComparisons } from './startup.bench.js';
import { tlsBenchmarks, tlsComparisons } from './tls.bench.js';
import { streamBenchmarks, streamComparisons } from './stream.bench.js';
import { InvalidOptionError } from '../src/errors.js';
import { compare, type Row } from './report.js';
import type { BenchContext, BackendName, Chart, Suite } from './suite.js';

export type { BenchContext, BackendName, Chart, Suite } from './suite.js';
export const LOCAL_ONLY: readonly BackendName[] = ['process', 'local'];

export const suites: Suite[] = [];
suites.push({ name: 'pool', byDefault: true, comparisons: flameComparisons, run: (ctx) => flameBenchmarks(ctx) });
suites.push({
  name: 'transport', backends: LOCAL_ONLY, comparisons: clusterComparisons,
  run: (ctx) => clusterBenchmarks(ctx.quick
    ? { messages: 30_000, roundTrips: 2_000, pipelined: 10_000, repetitions: 1 }
    : { messages: 300_000, roundTrips: 10_000, pipelined: 100_000, repetitions: 3 }, ctx.progress),
});
suites.push({ name: 'peers', backends: LOCAL_ONLY, comparisons: peersComparisons, run: (ctx) => peersBenchmarks(ctx) });
suites.push({ name: 'startup', backends: LOCAL_ONLY, comparisons: startupComparisons, run: (ctx) => startupBenchmarks(ctx) });
suites.push({ name: 'stream', comparisons: streamComparisons, run: (ctx) => streamBenchmarks(ctx) });
suites.push({ name: 'k8s', backends: LOCAL_ONLY, comparisons: k8sComparisons, run: (ctx) => k8sBenchmarks(ctx) });
suites.push({ name: 'tls', backends: LOCAL_ONLY, comparisons: tlsComparisons, run: (ctx) => tlsBenchmarks(ctx.quick ? { messages: 30_000, roundTrips: 2_000, pipelined: 0, repetitions: 2 } : { messages: 300_000, roundTrips: 10_000, pipelined: 0, repetitions: 4 }, ctx.progress) });
suites.push({ name: 'emulator', backends: LOCAL_ONLY, comparisons: emulatorComparisons, run: (ctx) => emulatorBenchmarks(ctx) });

export interface BenchSelection extends Omit<BenchContext, 'progress' | 'chart'> {
  /** Suite names, or `['all']`; default: the suites marked `byDefault`. */
  suites?: string[];
  /** Overall progress: the label of the suite's current step and the run's fraction done (0..1). */
  progress?: (label: string, fraction: number) => void;
}

export interface BenchResult {
  rows: Row[];
  charts: Chart[];
  /** Suites not run on this backend. */
  skipped: string[];
}

/** Names of the suites a selection runs, in registration order. */
export function selectSuites(names: string[] | undefined, backend: BackendName): { run: Suite[]; skipped: string[] } {
  const all = names?.includes('all');
  const unknown = (names ?? []).filter((n) => n !== 'all' && !suites.some((s) => s.name === n));
  if (unknown.length > 0) {
    const known = `${suites.map((s) => s.name).join(', ')}, all`;
    throw new InvalidOptionError(`--suite: unknown suite ${unknown.join(', ')} (one of ${known})`, { option: 'suite', expected: known });
  }
  const chosen = suites.filter((s) => (names === undefined ? s.byDefault : all || names.includes(s.name)));
  const fits = (s: Suite) => !s.backends || s.backends.includes(backend);
  return { run: chosen.filter(fits), skipped: chosen.filter((s) => !fits(s)).map((s) => s.name) };
}

/** Runs the selected suites one after the other and compares every row with its baseline. */
export async function runBenchmarks(selection: BenchSelection): Promise<BenchResult> {
  const { run, skipped } = selectSuites(selection.suites, selection.backendName);
  const rows: Row[] = [];
  const charts: Chart[] = [];
  for (const [i, suite] of run.entries()) {
    const ctx: BenchContext = {
      backendName: selection.backendName,
      backend: selection.backend,
      runners: selection.runners,
      durationMs: selection.durationMs,
      quick: selection.quick,
      progress: (label, fraction = 0) => selection.progress?.(
        label.startsWith(`${suite.name}:`) ? label : `${suite.name}: ${label}`, (i + Math.min(1, fraction)) / run.length),
      chart: (c) => charts.push(c),
    };
    rows.push(...(await suite.run(ctx)));
  }
  selection.progress?.('done', 1);
  compare(rows, run.flatMap((s) => s.comparisons));
  return { rows, charts, skipped };
}
