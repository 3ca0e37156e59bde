/**
 * Transport benchmarks (issue: foundation): remote nact dispatch and query against local nact,
 * and against a bare ws + msgpackr connection measured in the same run.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { setImmediate as turn } from 'node:timers/promises';
import { WebSocketServer, type WebSocket } from 'ws';
import { Packr } from 'msgpackr';
import { dispatch, query, spawn, type Ref } from 'nact';
import { startNode, type ClusterNode } from '../src/cluster/node.js';
import { countUntilExpected, type CountMsg } from './bench-actors.js';
import { median, percentile, round, type Row } from './report.js';

const PEER = new URL('./peer.js', import.meta.url);
const COOKIE = 'bench-cookie';
const BATCH = 1000;

export type { CountMsg };

export interface ClusterBenchOptions {
  messages: number;
  roundTrips: number;
  pipelined: number;
  repetitions: number;
}

export function forkPeer(env: Record<string, string>): { child: ChildProcess; ready: Promise<{ node?: string }> } {
  const child = fork(PEER, [], { env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ready = once(child, 'message').then(([m]) => m as { node?: string });
  return { child, ready };
}

export async function stopPeer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = once(child, 'exit');
  child.disconnect();
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}

/** Sends `n` small messages to `ref`, one batch per event-loop turn, pausing on backpressure. */
async function stream(node: ClusterNode | undefined, ref: Ref<CountMsg>, n: number): Promise<void> {
  for (let i = 0; i < n;) {
    const end = Math.min(n, i + BATCH);
    for (; i < end; i++) dispatch(ref, { n: i });
    if (node) await node.whenWritable(ref);
    await turn();
  }
}

export async function countTo(node: ClusterNode | undefined, ref: Ref<CountMsg>, n: number): Promise<number> {
  const start = performance.now();
  const done = query(ref, (sender: Ref<number>) => ({ type: 'expect' as const, n, sender }), 120_000);
  await stream(node, ref, n);
  await done;
  return n / ((performance.now() - start) / 1000);
}

export async function latencies(n: number, once: () => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < Math.min(1000, n / 10); i++) await once();
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await once();
    samples.push((performance.now() - t) * 1000);
  }
  return samples.sort((a, b) => a - b);
}

async function bareWs(opts: ClusterBenchOptions): Promise<{ batched: number; pingpongP50: number }> {
  const server = new WebSocketServer({ host: '127.0.0.20', port: 0, perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const connection = once(server, 'connection').then(([ws]) => ws as WebSocket);
  const { child, ready } = forkPeer({ BENCH_MODE: 'bare', BENCH_URL: `ws://127.0.0.20:${port}` });
  try {
    await ready;
    const ws = await connection;
    const packr = new Packr({ useRecords: true });
    let onMessage: (m: { done?: number; id?: number }) => void = () => {};
    ws.on('message', (data: Buffer) => onMessage(packr.unpack(data) as { done?: number; id?: number }));
    // Batched one-way stream, one frame per turn.
    const start = performance.now();
    const done = new Promise<void>((resolve) => (onMessage = (m) => m.done !== undefined && resolve()));
    ws.send(packr.pack({ expect: opts.messages }));
    for (let i = 0; i < opts.messages;) {
      const batch: unknown[] = [];
      const end = Math.min(opts.messages, i + BATCH);
      for (; i < end; i++) batch.push({ to: 'actor-1', msg: { n: i } });
      ws.send(packr.pack(batch));
      while (ws.bufferedAmount > 4 * 1024 * 1024) await turn();
      await turn();
    }
    await done;
    const batched = opts.messages / ((performance.now() - start) / 1000);
    // Ping-pong, one in flight.
    let resolveReply: () => void = () => {};
    onMessage = () => resolveReply();
    let id = 0;
    const samples = await latencies(opts.roundTrips, () => new Promise<void>((resolve) => {
      resolveReply = resolve;
      ws.send(packr.pack({ id: id++, to: 'echo', msg: { n: id } }));
    }));
    ws.close();
    return { batched, pingpongP50: percentile(samples, 0.5) };
  } finally {
    await stopPeer(child);
    server.close();
  }
}

async function flameNodes(opts: ClusterBenchOptions) {
  const node = await startNode({ name: 'bench@127.0.0.21', port: 0, cookie: COOKIE, log: 'warn' });
  const { child, ready } = forkPeer({ BENCH_MODE: 'flame', FLAME_NODE_NAME: 'runner@127.0.0.22', FLAME_PORT: '0', FLAME_COOKIE: COOKIE });
  try {
    const peer = String((await ready).node);
    await node.connect(peer);
    const counter = node.remoteRef<CountMsg>(peer, 'counter');
    const sink = node.remoteRef<CountMsg>(peer, 'sink');
    const echo = node.remoteRef<{ value: unknown; sender: Ref<unknown> }>(peer, 'echo');
    const dispatchRate = await countTo(node, counter, opts.messages);
    const transportRate = await countTo(node, sink, opts.messages);
    const ask = (i: number) => query(echo, (sender) => ({ value: { n: i }, sender }), 10_000);
    let i = 0;
    const samples = await latencies(opts.roundTrips, () => ask(i++));
    const echoes = Array.from({ length: 10 }, (_, k) => node.remoteRef<{ value: unknown; sender: Ref<unknown> }>(peer, `echo-${k}`));
    const pipelinedRate = async (n: number): Promise<number> => {
      const start = performance.now();
      let sent = 0;
      await Promise.all(Array.from({ length: 100 }, async (_, worker) => {
        const target = echoes[worker % echoes.length]!;
        while (sent < n) {
          sent++;
          await query(target, (sender) => ({ value: { n: sent }, sender }), 10_000);
        }
      }));
      return n / ((performance.now() - start) / 1000);
    };
    await pipelinedRate(opts.pipelined); // the JIT warms up on this path first
    const pipelined = await pipelinedRate(opts.pipelined);
    return { dispatchRate, transportRate, p50: percentile(samples, 0.5), p99: percentile(samples, 0.99), pipelined };
  } finally {
    await stopPeer(child);
    await node.stop();
  }
}

async function localNact(opts: ClusterBenchOptions): Promise<number> {
  const node = await startNode({ name: 'local@127.0.0.23', port: 0, cookie: COOKIE, log: 'warn' });
  try {
    const counter = spawn(node.system, countUntilExpected, 'counter', { initialState: { count: 0, expect: -1 } });
    return await countTo(undefined, counter, opts.messages);
  } finally {
    await node.stop();
  }
}

/** Runs the transport benchmarks `repetitions` times, interleaved, and reports medians. */
export async function clusterBenchmarks(opts: ClusterBenchOptions, progress: (s: string) => void): Promise<Row[]> {
  const runs: Record<string, number[]> = {};
  const add = (k: string, v: number) => (runs[k] ??= []).push(v);
  for (let rep = 1; rep <= opts.repetitions; rep++) {
    progress(`transport: repetition ${rep}/${opts.repetitions}: local nact`);
    add('local-nact-dispatch', await localNact(opts));
    progress(`transport: repetition ${rep}/${opts.repetitions}: bare ws`);
    const bare = await bareWs(opts);
    add('bare-ws-batched', bare.batched);
    add('bare-ws-pingpong-p50', bare.pingpongP50);
    progress(`transport: repetition ${rep}/${opts.repetitions}: flame nodes`);
    const flame = await flameNodes(opts);
    add('remote-dispatch', flame.dispatchRate);
    add('remote-transport', flame.transportRate);
    add('remote-query-p50', flame.p50);
    add('remote-query-p99', flame.p99);
    add('remote-query-pipelined', flame.pipelined);
  }
  const row = (name: string, unit: string, digits = 0): Row => ({ name, value: round(median(runs[name]!), digits), unit });
  return [
    row('remote-dispatch', 'msgs/s'),
    row('local-nact-dispatch', 'msgs/s'),
    row('remote-transport', 'msgs/s'),
    row('bare-ws-batched', 'msgs/s'),
    row('remote-query-p50', 'us', 1),
    row('remote-query-p99', 'us', 1),
    row('bare-ws-pingpong-p50', 'us', 1),
    row('remote-query-pipelined', 'queries/s'),
  ];
}

export const clusterComparisons = [
  { name: 'remote-dispatch', baseline: 'local-nact-dispatch', target: { op: '>=' as const, limit: 0.8 } },
  { name: 'remote-transport', baseline: 'bare-ws-batched', target: { op: '>=' as const, limit: 0.5 } },
  { name: 'remote-query-p50', baseline: 'bare-ws-pingpong-p50', target: { op: '<=' as const, limit: 1.5 } },
  { name: 'remote-query-pipelined', target: { op: '>=' as const, limit: 100_000 } },
];
