/**
 * Pool benchmarks (issue: FLAME core): a cold call against a bare process spawn-and-connect,
 * a warm call against a remote nact query, call throughput, and an idle runner's memory.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { WebSocketServer } from 'ws';
import { ProcessBackend } from '../src/backends/process/backend.js';
import { setDefaultBackendFactory } from '../src/flame/backend.js';
import { Pool } from '../src/flame/pool.js';
import { median, percentile, round, type Row } from './report.js';

setDefaultBackendFactory(() => new ProcessBackend({ stdio: 'ignore' }));
const PROBE = new URL('./spawn-probe.js', import.meta.url).pathname;

export interface FlameBenchOptions {
  coldSamples: number;
  warmCalls: number;
  throughputCalls: number;
}

async function spawnConnect(samples: number): Promise<number> {
  const server = new WebSocketServer({ host: '127.0.0.24', port: 0, perMessageDeflate: false });
  await once(server, 'listening');
  const url = `ws://127.0.0.24:${(server.address() as { port: number }).port}`;
  const times: number[] = [];
  try {
    for (let i = 0; i < samples; i++) {
      const start = performance.now();
      const first = new Promise<void>((resolve) => server.once('connection', (ws) => ws.once('message', () => {
        resolve();
        ws.close();
      })));
      const child = spawn(process.execPath, [PROBE], { env: { ...process.env, PROBE_URL: url }, stdio: 'ignore' });
      await first;
      times.push(performance.now() - start);
      await once(child, 'exit');
    }
  } finally {
    server.close();
  }
  return median(times);
}

export async function coldCall(samples: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    const pool = await Pool.start({ name: `cold-${i}`, max: 1, shutdownTimeout: 1000 });
    try {
      const start = performance.now();
      await pool.call((a: number, b: number) => a + b, [1, 2]);
      times.push(performance.now() - start);
    } finally {
      await pool.stop();
    }
  }
  return median(times);
}

/** Resident memory of a runner that booted, ran one call and sat idle for a second. */
export async function idleRunnerRss(): Promise<number> {
  const pool = await Pool.start({ name: 'idle', min: 1, max: 1, shutdownTimeout: 1000, idleShutdownAfter: Infinity });
  try {
    await pool.call(() => 1);
    await new Promise((r) => setTimeout(r, 1000));
    const pid = Number(/pid (\d+)/.exec(pool.status().runners[0]?.description ?? '')?.[1]);
    return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;
  } finally {
    await pool.stop();
  }
}

async function warmAndThroughput(opts: FlameBenchOptions): Promise<{ p50: number; throughput: number }> {
  const pool = await Pool.start({ name: 'warm', min: 2, max: 2, maxConcurrency: 100, shutdownTimeout: 1000, idleShutdownAfter: Infinity });
  try {
    const add = (a: number, b: number) => a + b;
    for (let i = 0; i < 500; i++) await pool.call(add, [i, 1]);
    const samples: number[] = [];
    for (let i = 0; i < opts.warmCalls; i++) {
      const t = performance.now();
      await pool.call(add, [i, 1]);
      samples.push((performance.now() - t) * 1000);
    }
    samples.sort((a, b) => a - b);
    const pipelined = async (n: number): Promise<number> => {
      let started = 0;
      const start = performance.now();
      await Promise.all(Array.from({ length: 100 }, async () => {
        while (started < n) {
          started++;
          await pool.call(add, [started, 1]);
        }
      }));
      return n / ((performance.now() - start) / 1000);
    };
    await pipelined(Math.min(20_000, opts.throughputCalls)); // the JIT warms up on this path too
    const throughput = await pipelined(opts.throughputCalls);
    return { p50: percentile(samples, 0.5), throughput };
  } finally {
    await pool.stop();
  }
}

export async function flameBenchmarks(opts: FlameBenchOptions, progress: (s: string) => void): Promise<Row[]> {
  progress('pool: process spawn + connect baseline');
  const spawnMs = await spawnConnect(opts.coldSamples);
  progress('pool: cold calls');
  const coldMs = await coldCall(opts.coldSamples);
  progress('pool: warm calls and throughput');
  const warm = await warmAndThroughput(opts);
  progress('pool: idle runner memory');
  const rss = median([await idleRunnerRss(), await idleRunnerRss(), await idleRunnerRss()]);
  return [
    { name: 'cold-call', value: round(coldMs), unit: 'ms' },
    { name: 'process-spawn-connect', value: round(spawnMs), unit: 'ms' },
    { name: 'warm-call-p50', value: round(warm.p50), unit: 'us' },
    { name: 'call-throughput', value: round(warm.throughput, 0), unit: 'calls/s' },
    { name: 'idle-runner-rss', value: round(rss), unit: 'MB' },
  ];
}

export const flameComparisons = [
  { name: 'cold-call', baseline: 'process-spawn-connect', target: { op: '<=' as const, limit: 1.5 } },
  { name: 'warm-call-p50', baseline: 'remote-query-p50', target: { op: '<=' as const, limit: 1.5 } },
  { name: 'call-throughput', target: { op: '>=' as const, limit: 50_000 } },
  { name: 'idle-runner-rss', target: { op: '<=' as const, limit: 60 } },
];
