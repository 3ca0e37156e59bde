/**
 * The other call peers: workerpool (npm `workerpool`, `workerType: 'process'`), a bare
 * ws + msgpackr child, and flame-actors' own pool.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Packr } from 'msgpackr';
import workerpool from 'workerpool';
import { WebSocketServer, type WebSocket } from 'ws';
import { ProcessBackend } from '../../src/backends/process/backend.js';
import { moduleRef } from '../../src/flame/fn-ref.js';
import { Pool } from '../../src/flame/pool.js';
import type { counter, CounterMsg } from '../bench-actors.js';
import { nactTarget } from '../flame.bench.js';
import { streamFor } from '../measure.js';
import { killLeftovers, type CallSystem } from './drive.js';

const WORKER = new URL('./workerpool-worker.js', import.meta.url).pathname;
const WS_CHILD = new URL('./ws-child.js', import.meta.url);
const COLD_POOL = new URL('./cold-pool.js', import.meta.url);
const RUNNER_ENTRY = new URL('./runner-entry.js', import.meta.url).pathname;
const ACTORS = new URL('../bench-actors.js', import.meta.url);

/** workerpool with `n` process workers; it hands a worker one task at a time. */
export async function workerpoolCalls(n: number): Promise<CallSystem> {
  const pool = workerpool.pool(WORKER, { workerType: 'process', minWorkers: n, maxWorkers: n, forkOpts: { stdio: 'inherit' } });
  return {
    pids: [],
    call: (a, b) => pool.exec('add', [a, b]) as unknown as Promise<number>,
    stop: async () => {
      await pool.terminate(true);
    },
  };
}

/** One child dialing a ws server in the parent; a frame per message each way, msgpackr-encoded. */
export async function wsMsgpackrCalls(): Promise<CallSystem> {
  const server = new WebSocketServer({ host: '127.0.0.25', port: 0, perMessageDeflate: false, maxPayload: 1024 * 1024 });
  let child: ChildProcess | undefined;
  try {
    await once(server, 'listening');
    const url = `ws://127.0.0.25:${(server.address() as { port: number }).port}`;
    const connection = once(server, 'connection');
    child = fork(WS_CHILD, [], { env: { ...process.env, PEER_URL: url }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const [ws] = (await connection) as [WebSocket];
    const packr = new Packr({ useRecords: false });
    const pending = new Map<number, (r: number) => void>();
    ws.on('message', (data: Buffer) => {
      const m = packr.unpack(data) as { id: number; r: number };
      pending.get(m.id)?.(m.r);
      pending.delete(m.id);
    });
    let id = 0;
    const pid = child.pid!;
    return {
      pids: [pid],
      call: (a, b) => new Promise<number>((resolve) => {
        const k = id++;
        pending.set(k, resolve);
        ws.send(packr.pack({ id: k, a, b }));
      }),
      stop: async () => {
        killLeftovers([pid]);
        server.close();
      },
    };
  } catch (e) {
    if (child?.pid) killLeftovers([child.pid]);
    server.close();
    throw e;
  }
}

const add = (x: number, y: number) => x + y;

/** A flame-actors pool of `n` process runners, each taking up to 100 calls at once. */
export async function flameCalls(n: number): Promise<CallSystem> {
  const pool = await Pool.start({
    name: `peers-${n}`, min: n, max: n, maxConcurrency: 100, idleShutdownAfter: Infinity, shutdownTimeout: 1000,
    backend: new ProcessBackend({ stdio: 'ignore' }),
  });
  return {
    pids: [],
    call: (a, b) => pool.call(add, [a, b]),
    stop: () => pool.stop(),
  };
}

/**
 * `call-throughput-cold`: the first `calls` calls of a fresh pool in a fresh parent process
 * (`rate`), and the same pool's rate over its calls `4 * calls` to `8 * calls` (`steady`).
 */
export async function coldPoolThroughput(calls: number): Promise<{ rate: number; steady: number }> {
  const child = fork(COLD_POOL, [], { env: { ...process.env, COLD_CALLS: String(calls) }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    const [m] = (await once(child, 'message')) as [{ rate: number; steady: number }];
    return m;
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000); // it stops its pool first
      await exited;
      clearTimeout(timer);
    }
  }
}

/**
 * One-way messages per second to a counting actor placed (`pool.placeChild`) on a one-runner
 * pool, streamed for `ms`; the runner is started from an app-style entry point that enables
 * batched delivery when `batched`, and otherwise only differs by that one call.
 */
export async function placedDispatch(ms: number, batched: boolean): Promise<number> {
  const pool = await Pool.start({
    name: `peers-placed${batched ? '-batched' : ''}`, min: 1, max: 1, idleShutdownAfter: Infinity, shutdownTimeout: 1000, log: 'warn',
    backend: new ProcessBackend({
      stdio: 'ignore', env: { BENCH_BATCHED: batched ? '1' : '0' },
      command: [process.execPath, '--v8-pool-size=1', '--no-experimental-detect-module', RUNNER_ENTRY],
    }),
  });
  try {
    const target = nactTarget(await pool.placeChild<CounterMsg>(moduleRef<typeof counter>(ACTORS, 'counter')));
    await streamFor(Math.min(ms / 4, 300), [target]); // warm-up
    return await streamFor(ms, [target]);
  } finally {
    await pool.stop();
  }
}
