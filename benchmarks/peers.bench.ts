/**
 * flame-actors beside its Node peers, in the same run: comedy (forked actors), workerpool
 * (process workers), a bare `child_process.fork` + IPC and a bare ws + msgpackr child. Every
 * figure is taken `repetitions` times, the systems interleaved within each repetition (their
 * order reversed every other one), and reported as the median with its spread (min-max).
 * Flame rows that already exist elsewhere (`remote-dispatch`, `cold-call`, `idle-runner-rss`)
 * are measured again here, interleaved with their peers, as `<row> vs <peer row>`.
 */
import { loadavg } from 'node:os';
import type { Ref } from 'nact';
import { startNode } from '../src/cluster/node.js';
import { countTo, forkPeer, stopPeer } from './cluster.bench.js';
import { coldCall, idleRunnerRss } from './flame.bench.js';
import { pipelined, type CallSystem } from './peers/drive.js';
import { forkIpcCalls, forkIpcColdStart, forkIpcIdleRss, forkIpcOneway } from './peers/fork-ipc.js';
import { median, round, type Comparison, type Row } from './report.js';
import type { BenchContext } from './suite.js';

export interface PeersBenchOptions {
  repetitions: number;
  /** Calls measured per call-throughput row, after as many to warm up. */
  calls: number;
  /** The same for workerpool, which runs one call per worker at a time (so far slower). */
  workerpoolCalls: number;
  /** `call-throughput-cold`: the first this-many calls of a fresh pool. */
  coldCalls: number;
  /** One-way messages per one-way row. */
  messages: number;
  /** Cold starts per system per repetition (their median is that repetition's figure). */
  coldStarts: number;
  /** Streaming time of each placed-actor one-way row, in ms. */
  placedMs: number;
  /** Calls a worker answers before its memory is read in the `-used` idle-memory rows. */
  usedCalls: number;
}

export const PEERS_OPTIONS: PeersBenchOptions = { repetitions: 3, calls: 40_000, workerpoolCalls: 10_000, coldCalls: 10_000, messages: 200_000, coldStarts: 3, placedMs: 1500, usedCalls: 10_000 };
export const PEERS_QUICK: PeersBenchOptions = { repetitions: 1, calls: 5_000, workerpoolCalls: 1_000, coldCalls: 2_000, messages: 30_000, coldStarts: 1, placedMs: 300, usedCalls: 2_000 };

const COOKIE = 'peers-cookie';
type CountMsg = { type: 'expect'; n: number; sender: Ref<number> } | { n: number };

/** Starts a system, runs `calls` calls to warm it up, then `calls` measured ones. */
async function throughput(start: () => Promise<CallSystem>, calls: number): Promise<number> {
  const sys = await start();
  try {
    await pipelined(sys.call, calls);
    return await pipelined(sys.call, calls);
  } finally {
    await sys.stop();
  }
}

/** One-way messages to the counting actor of a peer node (as `remote-dispatch`), optionally batched. */
async function flameOneway(messages: number, rep: number, batched: boolean): Promise<number> {
  const tag = `${rep}${batched ? 'b' : ''}`;
  const node = await startNode({ name: `peers-${tag}@127.0.0.26`, port: 0, cookie: COOKIE, log: 'warn' });
  const { child, ready } = forkPeer({
    BENCH_MODE: 'flame', BENCH_BATCHED: batched ? '1' : '0',
    FLAME_NODE_NAME: `peers-runner-${tag}@127.0.0.27`, FLAME_PORT: '0', FLAME_COOKIE: COOKIE,
  });
  try {
    const peer = String((await ready).node);
    await node.connect(peer);
    return await countTo(node, node.remoteRef<CountMsg>(peer, 'counter'), messages);
  } finally {
    await stopPeer(child);
    await node.stop();
  }
}

type Task = [name: string, run: () => Promise<number>];
/** The four phases (calls, one-way, cold start, idle memory), each interleaved on its own. */
const PHASES = 4;

/** Runs every repetition's tasks in order (reversed on odd repetitions) and collects samples. */
async function interleave(phase: number, reps: number, tasks: (rep: number) => Task[], ctx: BenchContext, runs: Map<string, number[]>): Promise<void> {
  for (let rep = 0; rep < reps; rep++) {
    const list = tasks(rep);
    if (rep % 2 === 1) list.reverse();
    for (const [i, [name, run]] of list.entries()) {
      ctx.progress(`repetition ${rep + 1}/${reps}: ${name}`, (phase + (rep + i / list.length) / reps) / PHASES);
      const v = await run();
      (runs.get(name) ?? runs.set(name, []).get(name)!).push(v);
    }
  }
}

/**
 * comedy and workerpool are devDependencies: loaded when the suite runs, so that registering it
 * costs nothing to the CLI of an installed package.
 */
async function loadPeers() {
  try {
    const [comedy, workers] = await Promise.all([import('./peers/comedy.js'), import('./peers/workers.js')]);
    return { ...comedy, ...workers };
  } catch (e) {
    throw new Error(`the peers suite needs the devDependencies comedy and workerpool (npm install in a checkout): ${(e as Error).message}`);
  }
}

export async function peersBenchmarks(ctx: BenchContext): Promise<Row[]> {
  const opts = ctx.quick ? PEERS_QUICK : PEERS_OPTIONS;
  const { comedyCalls, comedyColdStarts, comedyIdleRss, comedyOneway, coldPoolThroughput, flameCalls, placedDispatch, workerpoolCalls, wsMsgpackrCalls } = await loadPeers();
  const loadStart = loadavg()[0]!;
  ctx.progress(`load average at start ${loadStart.toFixed(2)} (1 min), ${loadavg()[1]!.toFixed(2)} (5 min)`);
  const runs = new Map<string, number[]>();
  const reps = opts.repetitions;
  const medianOf = async (f: () => Promise<number[]>) => median(await f());
  const times = async (n: number, f: () => Promise<number>) => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push(await f());
    return out;
  };

  await interleave(0, reps, () => [1, 2, 4].flatMap((n): Task[] => [
    [`call-throughput-${n}`, () => throughput(() => flameCalls(n), opts.calls)],
    [`comedy-call-throughput-${n}`, () => throughput(() => comedyCalls(n), opts.calls)],
    [`fork-ipc-call-throughput-${n}`, () => throughput(() => forkIpcCalls(n), opts.calls)],
  ]).concat([
    ['workerpool-call-throughput-1', () => throughput(() => workerpoolCalls(1), opts.workerpoolCalls)],
    ['ws-msgpackr-call-throughput-1', () => throughput(() => wsMsgpackrCalls(), opts.calls)],
    ['call-throughput-cold', async () => {
      const { rate, steady } = await coldPoolThroughput(opts.coldCalls);
      (runs.get('call-throughput-cold-steady') ?? runs.set('call-throughput-cold-steady', []).get('call-throughput-cold-steady')!).push(steady);
      return rate;
    }],
  ]), ctx, runs);

  await interleave(1, reps, (rep) => [
    ['remote-dispatch vs fork-ipc-oneway', () => flameOneway(opts.messages, rep, false)],
    ['remote-dispatch-batched', () => flameOneway(opts.messages, rep, true)],
    ['placed-dispatch-1 vs fork-ipc-oneway', () => placedDispatch(opts.placedMs, false)],
    ['placed-dispatch-1-batched', () => placedDispatch(opts.placedMs, true)],
    ['fork-ipc-oneway', () => forkIpcOneway(opts.messages)],
    ['comedy-oneway', () => comedyOneway(opts.messages)],
  ], ctx, runs);

  await interleave(2, reps, () => [
    ['cold-call vs fork-ipc-cold-start', () => coldCall(ctx, opts.coldStarts)],
    ['fork-ipc-cold-start', () => medianOf(() => times(opts.coldStarts, forkIpcColdStart))],
    ['comedy-cold-start', () => medianOf(() => comedyColdStarts(opts.coldStarts))],
  ], ctx, runs);

  await interleave(3, reps, () => [
    ['idle-runner-rss vs fork-ipc-idle-rss', () => idleRunnerRss(ctx)],
    ['fork-ipc-idle-rss', () => forkIpcIdleRss()],
    ['comedy-idle-rss', () => comedyIdleRss()],
    // After equal work: a pool's warmed min runner is in this state (its warm-up makes ~10,000 calls).
    ['idle-runner-rss-used vs fork-ipc-idle-rss-used', () => idleRunnerRss(ctx, opts.usedCalls)],
    ['fork-ipc-idle-rss-used', () => forkIpcIdleRss(opts.usedCalls)],
  ], ctx, runs);

  const loadEnd = loadavg()[0]!;
  ctx.progress(`load average at end ${loadEnd.toFixed(2)} (1 min), ${loadavg()[1]!.toFixed(2)} (5 min)`);
  runs.set('remote-dispatch-batched vs fork-ipc-oneway', runs.get('remote-dispatch-batched')!);
  runs.set('call-throughput-1 vs fork-ipc-call-throughput-1', runs.get('call-throughput-1')!);
  runs.set('call-throughput-cold vs call-throughput-cold-steady', runs.get('call-throughput-cold')!);
  runs.set('placed-dispatch-1-batched vs fork-ipc-oneway', runs.get('placed-dispatch-1-batched')!);

  const row = (name: string, unit: string, digits = 0): Row => {
    const xs = runs.get(name)!;
    return { name, value: round(median(xs), digits), unit, min: round(Math.min(...xs), digits), max: round(Math.max(...xs), digits) };
  };
  return [
    { name: 'load-average-start', value: round(loadStart, 2), unit: 'runnable (1 min)' },
    row('call-throughput-1', 'calls/s'),
    row('call-throughput-1 vs fork-ipc-call-throughput-1', 'calls/s'),
    row('comedy-call-throughput-1', 'calls/s'),
    row('fork-ipc-call-throughput-1', 'calls/s'),
    row('workerpool-call-throughput-1', 'calls/s'),
    row('ws-msgpackr-call-throughput-1', 'calls/s'),
    row('call-throughput-2', 'calls/s'),
    row('comedy-call-throughput-2', 'calls/s'),
    row('fork-ipc-call-throughput-2', 'calls/s'),
    row('call-throughput-4', 'calls/s'),
    row('comedy-call-throughput-4', 'calls/s'),
    row('fork-ipc-call-throughput-4', 'calls/s'),
    row('call-throughput-cold', 'calls/s'),
    row('call-throughput-cold vs call-throughput-cold-steady', 'calls/s'),
    row('call-throughput-cold-steady', 'calls/s'),
    row('remote-dispatch vs fork-ipc-oneway', 'msgs/s'),
    row('remote-dispatch-batched', 'msgs/s'),
    row('remote-dispatch-batched vs fork-ipc-oneway', 'msgs/s'),
    row('placed-dispatch-1 vs fork-ipc-oneway', 'msgs/s'),
    row('placed-dispatch-1-batched', 'msgs/s'),
    row('placed-dispatch-1-batched vs fork-ipc-oneway', 'msgs/s'),
    row('fork-ipc-oneway', 'msgs/s'),
    row('comedy-oneway', 'msgs/s'),
    row('cold-call vs fork-ipc-cold-start', 'ms', 1),
    row('fork-ipc-cold-start', 'ms', 1),
    row('comedy-cold-start', 'ms', 1),
    row('idle-runner-rss vs fork-ipc-idle-rss', 'MB', 1),
    row('fork-ipc-idle-rss', 'MB', 1),
    row('comedy-idle-rss', 'MB', 1),
    row('idle-runner-rss-used vs fork-ipc-idle-rss-used', 'MB', 1),
    row('fork-ipc-idle-rss-used', 'MB', 1),
    { name: 'load-average-end', value: round(loadEnd, 2), unit: 'runnable (1 min)' },
  ];
}

const atLeast = (limit: number) => ({ op: '>=' as const, limit });
const atMost = (limit: number) => ({ op: '<=' as const, limit });

/** The targets of the performance issue: each flame row against the peer it must beat or approach. */
export const peersComparisons: Comparison[] = [
  { name: 'call-throughput-1', baseline: 'comedy-call-throughput-1', target: atLeast(1.3) },
  { name: 'call-throughput-2', baseline: 'comedy-call-throughput-2', target: atLeast(1.3) },
  { name: 'call-throughput-4', baseline: 'comedy-call-throughput-4', target: atLeast(1.3) },
  { name: 'call-throughput-1 vs fork-ipc-call-throughput-1', baseline: 'fork-ipc-call-throughput-1', target: atLeast(0.7) },
  { name: 'call-throughput-cold', baseline: 'call-throughput-1', target: atLeast(0.8) },
  // The same ratio inside one fresh process: call-throughput-1 runs in the benchmark's own process,
  // whose Node internals are already hot from every other row, so it is not the pool's alone.
  { name: 'call-throughput-cold vs call-throughput-cold-steady', baseline: 'call-throughput-cold-steady', target: atLeast(0.8) },
  { name: 'remote-dispatch vs fork-ipc-oneway', baseline: 'fork-ipc-oneway', target: atLeast(1.0) },
  { name: 'remote-dispatch-batched', baseline: 'remote-dispatch vs fork-ipc-oneway' },
  { name: 'remote-dispatch-batched vs fork-ipc-oneway', baseline: 'fork-ipc-oneway', target: atLeast(1.0) },
  { name: 'placed-dispatch-1 vs fork-ipc-oneway', baseline: 'fork-ipc-oneway', target: atLeast(1.0) },
  { name: 'placed-dispatch-1-batched', baseline: 'placed-dispatch-1 vs fork-ipc-oneway' },
  { name: 'placed-dispatch-1-batched vs fork-ipc-oneway', baseline: 'fork-ipc-oneway', target: atLeast(1.0) },
  { name: 'cold-call vs fork-ipc-cold-start', baseline: 'fork-ipc-cold-start', target: atMost(1.5) },
  { name: 'idle-runner-rss vs fork-ipc-idle-rss', baseline: 'fork-ipc-idle-rss', target: atMost(1.15) },
  { name: 'idle-runner-rss-used vs fork-ipc-idle-rss-used', baseline: 'fork-ipc-idle-rss-used', target: atMost(1.15) },
];
