/**
 * Pool benchmarks on the chosen backend (`flame-actors bench --backend ...`): nact dispatch to
 * actors placed on 1 and N runners, query and call latency (HDR histograms), call throughput with
 * and without a `flame-actors:call` subscriber, cold calls; each beside a baseline measured in the
 * same run where one exists: local nact, a bare ws + msgpackr peer on the runner over the same
 * link, a bare process spawn (process backend).
 */
import { spawn } from 'node:child_process';
import { tracingChannel } from 'node:diagnostics_channel';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { Packr } from 'msgpackr';
import { dispatch, query, start as startSystem, stop as stopActor, type Ref } from 'nact';
import { WebSocketServer, type WebSocket } from 'ws';
import { moduleRef } from '../src/flame/fn-ref.js';
import { Pool } from '../src/flame/pool.js';
import { counter, type bareWsPeer, type CounterMsg, type echo, type EchoMsg } from './bench-actors.js';
import { histogram, latencyFor, percentilePoints, streamFor, throughputFor, type Histogram, type StreamTarget } from './measure.js';
import { pipelined } from './peers/drive.js';
import { median, round, type Comparison, type Row } from './report.js';
import type { BenchContext } from './suite.js';

const ACTORS = new URL('./bench-actors.js', import.meta.url);
const PROBE = new URL('./spawn-probe.js', import.meta.url).pathname;
const REPETITIONS = 3;
/** Timed slices per repetition (each measured row, its baseline included). */
const SLICES = 9;
const IN_FLIGHT = 100;
const QUERY_TIMEOUT = 30_000;

const add = (a: number, b: number) => a + b;

export function nactTarget(ref: Ref<CounterMsg>): StreamTarget {
  let id = 0;
  return {
    send(size) {
      for (let i = 0; i < size; i++) dispatch(ref, { n: i });
    },
    sync: () => query(ref, (sender: Ref<number>) => ({ sync: id++, sender }), QUERY_TIMEOUT),
  };
}

/** A bare ws link to a `bareWsPeer` that a call runs on a runner of `pool`. */
async function bareLink(pool: Pool, timeoutMs: number) {
  const host = process.env.POD_IP || '127.0.0.1';
  const server = new WebSocketServer({ host, port: 0, perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
  await once(server, 'listening');
  const url = `ws://${host.includes(':') ? `[${host}]` : host}:${(server.address() as { port: number }).port}`;
  const connected = once(server, 'connection').then(([ws]) => ws as WebSocket);
  const peer = pool.call(moduleRef<typeof bareWsPeer>(ACTORS, 'bareWsPeer'), [url], { timeout: timeoutMs });
  let ws: WebSocket;
  try {
    ws = await Promise.race([connected, peer.then(() => Promise.reject(new Error('the bare ws peer ended before connecting')))]);
  } catch (error) {
    server.close();
    throw error;
  }
  const packr = new Packr({ useRecords: true });
  const syncs = new Map<number, (count: number) => void>();
  let pong: () => void = () => {};
  ws.on('message', (data: Buffer) => {
    const m = packr.unpack(data) as { sync?: number; count?: number };
    if (m.sync !== undefined) syncs.get(m.sync)?.(m.count ?? 0);
    else pong();
  });
  let id = 0;
  const target: StreamTarget = {
    send(size) {
      const batch: unknown[] = [];
      for (let i = 0; i < size; i++) batch.push({ to: 'actor-1', msg: { n: i } });
      ws.send(packr.pack(batch));
    },
    sync: () => new Promise((resolve) => {
      const n = id++;
      syncs.set(n, (count) => {
        syncs.delete(n);
        resolve(count);
      });
      ws.send(packr.pack({ sync: n }));
    }),
  };
  const ping = () => new Promise<void>((resolve) => {
    pong = resolve;
    ws.send(packr.pack({ id: id++, to: 'echo', msg: { n: id } }));
  });
  const close = async () => {
    ws.close();
    await peer.catch(() => 0);
    server.close();
  };
  return { target, ping, close };
}

/** Median time from spawning a bare Node process to its first ws message: a cold call's floor on this machine. */
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

export async function coldCall(ctx: BenchContext, samples: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    const pool = await Pool.start({ name: `bench-cold-${i}`, backend: ctx.backend(), max: 1, shutdownTimeout: 1000, log: 'warn' });
    try {
      const start = performance.now();
      await pool.call(add, [1, 2]);
      times.push(performance.now() - start);
    } finally {
      await pool.stop();
    }
  }
  return median(times);
}

/**
 * Resident memory of a runner process that booted, ran `calls` calls (one by default; more are
 * made 100 in flight) and sat idle for a second (process backend). The pool's warm-up is off:
 * `calls` says how much work the runner has seen (a warmed `min` runner measures as one that
 * ran its ~10,000 warm-up calls).
 */
export async function idleRunnerRss(ctx: BenchContext, calls = 1): Promise<number> {
  const pool = await Pool.start({ name: 'bench-idle', backend: ctx.backend(), min: 1, max: 1, warmUp: false, shutdownTimeout: 1000, idleShutdownAfter: Infinity, log: 'warn' });
  try {
    if (calls <= 1) await pool.call(() => 1);
    else await pipelined((a, b) => pool.call((x: number, y: number) => x + y, [a, b]), calls);
    await new Promise((r) => setTimeout(r, 1000));
    const pid = Number(/pid (\d+)/.exec(pool.status().runners[0]?.description ?? '')?.[1]);
    return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;
  } finally {
    await pool.stop();
  }
}

/** Starts a pool of exactly `n` runners and waits until all are ready. */
async function fixedPool(ctx: BenchContext, name: string, n: number): Promise<Pool> {
  const pool = await Pool.start({
    name, backend: ctx.backend(), min: n, max: n, maxConcurrency: IN_FLIGHT + 10, shutdownTimeout: 1000, idleShutdownAfter: Infinity, log: 'warn',
  });
  // Every runner busy at once brings them all up, whatever Pool.start waited for.
  await Promise.all(Array.from({ length: n * 2 }, () => pool.call(add, [1, 2], { timeout: 300_000 })));
  return pool;
}

/** A subscriber doing what a tracer's cheapest handler does: read the context. */
function attachTracer(): () => void {
  let seen = 0;
  const handlers = {
    start: (m: unknown) => void (m && seen++),
    end: () => {},
    asyncStart: () => {},
    asyncEnd: (m: unknown) => void (m && seen++),
    error: () => {},
  };
  const channel = tracingChannel('flame-actors:call');
  channel.subscribe(handlers);
  return () => channel.unsubscribe(handlers);
}

export async function flameBenchmarks(ctx: BenchContext): Promise<Row[]> {
  const n = Math.max(1, ctx.runners);
  const slice = ctx.durationMs / SLICES / REPETITIONS;
  const warmup = Math.min(slice, 300);
  const coldSamples = ctx.quick || ctx.backendName === 'kubernetes' ? 3 : 5;
  const runs: Record<string, number[]> = {};
  const record = (k: string, v: number) => (runs[k] ??= []).push(v);
  const hist: Record<string, Histogram> = { 'placed-query': histogram(), 'link-ws-pingpong': histogram(), 'warm-call': histogram() };
  let step = 0;
  const steps = 3 + REPETITIONS * 2; // every progress() below, the last one included
  const progress = (label: string) => ctx.progress(label, step++ / steps);

  progress(`cold calls (${coldSamples})`);
  const coldMs = await coldCall(ctx, coldSamples);
  const spawnMs = ctx.backendName === 'process' ? await spawnConnect(coldSamples) : undefined;

  progress('one runner: placing actors, connecting a bare ws peer');
  const system = startSystem();
  const one = await fixedPool(ctx, 'bench-one', 1);
  try {
    const local = nactTarget(counter(system as unknown as Ref<never>));
    const placed = nactTarget(await one.placeChild<CounterMsg>(moduleRef<typeof counter>(ACTORS, 'counter')));
    const echoRef = await one.placeChild<EchoMsg>(moduleRef<typeof echo>(ACTORS, 'echo'));
    // The bare peer dials the parent on a free port: a NetworkPolicy may forbid that where the
    // cluster link is allowed. The link rows are then left out, the rest is measured.
    const bare = await bareLink(one, ctx.durationMs * 2 + 120_000).catch((error: Error) => {
      progress(`no bare ws baseline (the runner could not reach this process on a free port: ${error.message})`);
      return undefined;
    });
    try {
      let i = 0;
      const ask = () => query(echoRef, (sender: Ref<unknown>) => ({ value: { n: i++ }, sender }), QUERY_TIMEOUT);
      const call = () => one.call(add, [i++, 1]);
      // Warm-ups, not recorded: the JIT compiles each path before it is measured.
      await streamFor(warmup, [local]);
      await streamFor(warmup, [placed]);
      if (bare) await streamFor(warmup, [bare.target]);
      await latencyFor(warmup, ask);
      if (bare) await latencyFor(warmup, bare.ping);
      await latencyFor(warmup, call);
      for (let rep = 1; rep <= REPETITIONS; rep++) {
        progress(`one runner: repetition ${rep}/${REPETITIONS}`);
        record('local-nact-dispatch', await streamFor(slice, [local]));
        record('placed-dispatch-1', await streamFor(slice, [placed]));
        if (bare) record('link-ws-batched', await streamFor(slice, [bare.target]));
        await latencyFor(slice, ask, hist['placed-query']);
        if (bare) await latencyFor(slice, bare.ping, hist['link-ws-pingpong']);
        await latencyFor(slice, call, hist['warm-call']);
      }
    } finally {
      await bare?.close();
    }
  } finally {
    await one.stop();
    stopActor(system);
  }

  progress(`${n} runners: placing one actor on each`);
  const many = await fixedPool(ctx, 'bench-many', n);
  try {
    const targets: StreamTarget[] = [];
    for (let k = 0; k < n; k++) targets.push(nactTarget(await many.placeChild<CounterMsg>(moduleRef<typeof counter>(ACTORS, 'counter'))));
    const call = () => many.call(add, [1, 1]);
    await streamFor(warmup, targets);
    // Calls on several runners keep getting faster for about a second (the code run once per
    // frame, not per call, is compiled last), and the traced path is warmed up too: without it,
    // its first slice measured the JIT compiling the tracing code (an application attaches its
    // tracer once, at start).
    await throughputFor(slice, IN_FLIGHT, call);
    const detachWarm = attachTracer();
    try {
      await throughputFor(slice, IN_FLIGHT, call);
    } finally {
      detachWarm();
    }
    for (let rep = 1; rep <= REPETITIONS; rep++) {
      progress(`${n} runners: repetition ${rep}/${REPETITIONS}`);
      record('placed-dispatch-n', await streamFor(slice, targets));
      // Interleaved, and alternating which goes first, so drift favours neither.
      const traced = async () => {
        const detach = attachTracer();
        try {
          record('call-throughput-traced', await throughputFor(slice, IN_FLIGHT, call));
        } finally {
          detach();
        }
      };
      const plain = async () => record('call-throughput', await throughputFor(slice, IN_FLIGHT, call));
      if (rep % 2) {
        await plain();
        await traced();
      } else {
        await traced();
        await plain();
      }
      // Each repetition's pair, side by side: a ratio per pair cancels the drift between
      // repetitions (the pool keeps getting faster), which a ratio of medians does not.
      record('call-throughput-traced-pair', runs['call-throughput-traced']!.at(-1)! / runs['call-throughput']!.at(-1)!);
    }
  } finally {
    await many.stop();
  }

  let rss: number | undefined;
  if (ctx.backendName === 'process') {
    progress('idle runner memory');
    const samples = ctx.quick || ctx.durationMs < 10_000 ? 1 : 3;
    const values: number[] = [];
    for (let k = 0; k < samples; k++) values.push(await idleRunnerRss(ctx));
    rss = median(values);
  }

  const us = (name: string, p: number) => hist[name]!.getValueAtPercentile(p);
  ctx.chart({
    kind: 'latency', title: 'Round-trip latency on one runner', unit: 'us',
    series: [
      { name: 'placed-query', points: percentilePoints(hist['placed-query']!) },
      { name: 'warm-call', points: percentilePoints(hist['warm-call']!) },
      ...(runs['link-ws-batched'] ? [{ name: 'link-ws-pingpong (bare ws)', points: percentilePoints(hist['link-ws-pingpong']!) }] : []),
    ],
  });
  const m = (k: string) => median(runs[k]!);
  ctx.chart({
    kind: 'bars', title: 'nact dispatch to placed actors, per runner count', unit: 'msgs/s',
    bars: [
      { label: 'local nact', value: round(m('local-nact-dispatch'), 0) },
      { label: '1 runner', value: round(m('placed-dispatch-1'), 0) },
      { label: `${n} runners`, value: round(m('placed-dispatch-n'), 0) },
    ],
  });
  const rows: Row[] = [
    { name: 'placed-dispatch-1', value: round(m('placed-dispatch-1'), 0), unit: 'msgs/s', detail: 'nact dispatch to an actor placed on 1 runner' },
    { name: 'local-nact-dispatch', value: round(m('local-nact-dispatch'), 0), unit: 'msgs/s', detail: 'the same actor in this process' },
    { name: 'placed-dispatch-n', value: round(m('placed-dispatch-n'), 0), unit: 'msgs/s', detail: `one actor on each of ${n} runners` },
    { name: 'placed-query-p50', value: us('placed-query', 50), unit: 'us', detail: 'nact query, one outstanding' },
    { name: 'placed-query-p99', value: us('placed-query', 99), unit: 'us' },
    { name: 'warm-call-p50', value: us('warm-call', 50), unit: 'us' },
    { name: 'warm-call-p99', value: us('warm-call', 99), unit: 'us' },
    { name: 'call-throughput', value: round(m('call-throughput'), 0), unit: 'calls/s', detail: `${IN_FLIGHT} in flight on ${n} runners` },
    {
      name: 'call-throughput-traced', value: round(m('call-throughput-traced'), 0), unit: 'calls/s', detail: 'the same, a flame-actors:call subscriber attached',
      ratio: round(m('call-throughput-traced-pair'), 3),
    },
    { name: 'cold-call', value: round(coldMs), unit: 'ms', detail: 'a call on an empty pool, to its result' },
  ];
  if (runs['link-ws-batched']) {
    rows.push(
      { name: 'link-ws-batched', value: round(m('link-ws-batched'), 0), unit: 'msgs/s', detail: 'bare ws + msgpackr to the runner' },
      { name: 'link-ws-pingpong-p50', value: us('link-ws-pingpong', 50), unit: 'us', detail: 'bare ws + msgpackr to the runner' },
      { name: 'link-ws-pingpong-p99', value: us('link-ws-pingpong', 99), unit: 'us' },
    );
  }
  if (spawnMs !== undefined) rows.push({ name: 'process-spawn-connect', value: round(spawnMs), unit: 'ms', detail: 'bare Node process to its first ws message' });
  if (rss !== undefined) rows.push({ name: 'idle-runner-rss', value: round(rss), unit: 'MB' });
  return rows;
}

export const flameComparisons: Comparison[] = [
  { name: 'placed-dispatch-1', baseline: 'local-nact-dispatch', target: { op: '>=', limit: 0.8 } },
  { name: 'placed-dispatch-n', baseline: 'placed-dispatch-1' },
  { name: 'placed-query-p50', baseline: 'link-ws-pingpong-p50', target: { op: '<=', limit: 1.5 } },
  { name: 'warm-call-p50', baseline: 'link-ws-pingpong-p50', target: { op: '<=', limit: 1.5 } },
  { name: 'call-throughput', target: { op: '>=', limit: 50_000 } },
  { name: 'call-throughput-traced', baseline: 'call-throughput', target: { op: '>=', limit: 0.9 } },
  { name: 'cold-call', baseline: 'process-spawn-connect', target: { op: '<=', limit: 1.5 } },
  { name: 'idle-runner-rss', target: { op: '<=', limit: 60 } },
];
