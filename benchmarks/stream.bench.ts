/**
 * Streams (`pool.stream`): items per second of small items through one stream from a runner,
 * beside `pool.call` throughput (100 in flight) on the same one-runner pool, measured in the same
 * run, interleaved (alternating which goes first) and repeated.
 */
import { Pool } from '../src/flame/pool.js';
import { throughputFor } from './measure.js';
import { median, round, type Comparison, type Row } from './report.js';
import type { BenchContext } from './suite.js';

const REPETITIONS = 3;
const IN_FLIGHT = 100;

const add = (a: number, b: number) => a + b;

/** Items of an endless stream of `{ n }` read for `ms`, per second; the stream is cancelled after. */
async function streamItemsFor(pool: Pool, ms: number, highWaterMark: number): Promise<number> {
  const stream = pool.stream(async function* () {
    for (let n = 0; ; n++) yield { n };
  }, [], { highWaterMark, timeout: ms + 60_000 });
  const start = performance.now();
  const end = start + ms;
  let items = 0;
  try {
    // The clock is read every 256 items: reading it per item would cost more than an item.
    for (;;) {
      const { done } = await stream.next();
      if (done) break;
      if ((++items & 255) === 0 && performance.now() >= end) break;
    }
  } finally {
    await stream.return();
  }
  return items / ((performance.now() - start) / 1000);
}

export async function streamBenchmarks(ctx: BenchContext): Promise<Row[]> {
  const slice = ctx.durationMs / 2 / REPETITIONS;
  const warmup = Math.min(slice, 300);
  const runs: Record<string, number[]> = {};
  const record = (k: string, v: number) => (runs[k] ??= []).push(v);
  ctx.progress('one runner', 0);
  const pool = await Pool.start({
    name: 'bench-stream', backend: ctx.backend(), min: 1, max: 1, maxConcurrency: IN_FLIGHT + 10, shutdownTimeout: 1000, idleShutdownAfter: Infinity, log: 'warn',
  });
  try {
    const call = () => pool.call(add, [1, 2]);
    await throughputFor(warmup, IN_FLIGHT, call);
    await streamItemsFor(pool, warmup, 64);
    for (let rep = 1; rep <= REPETITIONS; rep++) {
      ctx.progress(`repetition ${rep}/${REPETITIONS}`, rep / (REPETITIONS + 1));
      const items = async () => record('stream-items', await streamItemsFor(pool, slice, 64));
      const calls = async () => record('stream-call-throughput', await throughputFor(slice, IN_FLIGHT, call));
      if (rep % 2) {
        await items();
        await calls();
      } else {
        await calls();
        await items();
      }
    }
  } finally {
    await pool.stop();
  }
  /** The median of a row's repetitions, with their spread. */
  const m = (k: string) => ({ value: round(median(runs[k]!), 0), min: round(Math.min(...runs[k]!), 0), max: round(Math.max(...runs[k]!), 0) });
  return [
    { name: 'stream-items', ...m('stream-items'), unit: 'items/s', detail: 'small items ({ n }) through one pool.stream, highWaterMark 64' },
    { name: 'stream-call-throughput', ...m('stream-call-throughput'), unit: 'calls/s', detail: `pool.call, ${IN_FLIGHT} in flight on the same runner` },
  ];
}

export const streamComparisons: Comparison[] = [
  { name: 'stream-items', baseline: 'stream-call-throughput', target: { op: '>=', limit: 1 } },
];
