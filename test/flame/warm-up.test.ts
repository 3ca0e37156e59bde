import { expect } from 'chai';
import dc from 'node:diagnostics_channel';
import { ProcessBackend } from '../../src/backends/process/backend.js';
import { startNode, type ClusterNode } from '../../src/cluster/node.js';
import type { Backend, BackendContext, RunnerInstance, RunnerSpec } from '../../src/flame/backend.js';
import { SERVICE } from '../../src/flame/protocol.js';
import type { PoolOptions } from '../../src/flame/options.js';
import { WARM_UP_BUDGET, warmUp, type WarmUpBudget } from '../../src/flame/warm-up.js';
import { CHANNELS } from '../../src/observability/diagnostics.js';
import { alive, startPool, stopAllPools } from '../helpers/pools.js';
import { settlesWithin, waitFor } from '../helpers/wait.js';

/** A budget that never ends on its own: each test sets the one limit it checks. */
const UNBOUNDED: WarmUpBudget = { maxMs: 60_000, maxCalls: 1_000_000, minCalls: 0, sliceCalls: 100, patience: 1_000_000 };

/** A call that settles on the next turn of the event loop, counting what is outstanding. */
function turnCalls(): { call: (i: number) => Promise<unknown>; outstanding: () => number; most: () => number; made: () => number } {
  let outstanding = 0;
  let most = 0;
  let made = 0;
  return {
    call: () => {
      made++;
      most = Math.max(most, ++outstanding);
      return new Promise((resolve) => setImmediate(() => {
        outstanding--;
        resolve(undefined);
      }));
    },
    outstanding: () => outstanding,
    most: () => most,
    made: () => made,
  };
}

describe('warmUp (the driver of a pool\'s warm-up calls)', function () {
  it('keeps its calls in flight and resolves once every one of them has settled', async function () {
    const calls = turnCalls();
    const result = await warmUp(calls.call, 20, 1, { ...UNBOUNDED, maxCalls: 500 });
    expect(calls.most()).to.equal(20);
    expect(calls.outstanding()).to.equal(0);
    expect(result).to.include({ calls: 500, ended: 'calls' });
    expect(calls.made()).to.equal(500);
  });

  it('makes at most its call budget per runner', async function () {
    const calls = turnCalls();
    const result = await warmUp(calls.call, 10, 3, { ...UNBOUNDED, maxCalls: 100 });
    expect(result).to.include({ calls: 300, ended: 'calls' });
    expect(calls.made()).to.equal(300);
  });

  it('starts no call past its time budget', async function () {
    const calls = turnCalls();
    const result = await warmUp(calls.call, 10, 1, { ...UNBOUNDED, maxMs: 50 });
    expect(result.ended).to.equal('time');
    // The calls in flight at the deadline settle within a turn; generous for a loaded machine.
    expect(result.ms).to.be.within(50, 2000);
    expect(calls.outstanding()).to.equal(0);
  });

  it('ends once its slices stop getting faster than the best one', async function () {
    // Calls at a steady rate: after the first slices no slice beats the best by much for long.
    const calls = turnCalls();
    const result = await warmUp(calls.call, 10, 1, { ...UNBOUNDED, minCalls: 200, sliceCalls: 50, patience: 3 });
    expect(result.ended).to.equal('plateau');
    expect(result.calls).to.be.at.least(200).and.below(UNBOUNDED.maxCalls);
  });

  it('ends at the first failure, starts no call after it, and still waits for the calls in flight', async function () {
    const calls = turnCalls();
    const failure = new Error('runner went away');
    let failedAt = -1;
    let madeAfterFailure = 0;
    const result = await warmUp((i) => {
      if (failedAt >= 0) madeAfterFailure++;
      if (i === 50) {
        failedAt = i;
        return Promise.reject(failure);
      }
      return calls.call(i);
    }, 10, 1, UNBOUNDED);
    expect(result.ended).to.equal('failed');
    expect(result.error).to.equal(failure);
    expect(madeAfterFailure).to.equal(0);
    expect(calls.outstanding()).to.equal(0);
  });

  it('takes a call that throws as a failure, never as a throw of its own', async function () {
    const failure = new Error('thrown at once');
    const result = await warmUp(() => {
      throw failure;
    }, 5, 1, UNBOUNDED);
    expect(result).to.include({ calls: 0, ended: 'failed', error: failure });
  });
});

/** Counts the calls (`flame.call` requests) a node sends to each runner node; `onCall` sees each. */
function countCalls(node: ClusterNode, onCall?: (runner: string, n: number) => void): Map<string, number> {
  const counts = new Map<string, number>();
  const requestTo = node.requestTo.bind(node);
  node.requestTo = ((target: string, service: string, ...rest: unknown[]) => {
    if (service === SERVICE.call) {
      const n = (counts.get(target) ?? 0) + 1;
      counts.set(target, n);
      onCall?.(target, n);
    }
    return (requestTo as (...args: unknown[]) => void)(target, service, ...rest);
  }) as ClusterNode['requestTo'];
  return counts;
}

/** Delegates to a process backend and keeps the pids of the runners it started. */
class PidRecorder implements Backend {
  readonly name = 'process';
  readonly pids: number[] = [];
  readonly #inner = new ProcessBackend({ stdio: 'ignore' });
  init(context: BackendContext): Promise<void> {
    return this.#inner.init(context);
  }
  async boot(spec: RunnerSpec, signal: AbortSignal): Promise<RunnerInstance> {
    const instance = await this.#inner.boot(spec, signal);
    this.pids.push(Number(/pid (\d+)/.exec(instance.description)?.[1]));
    return instance;
  }
  shutdown(runner: RunnerInstance): Promise<void> {
    return this.#inner.shutdown(runner);
  }
  dispose(): Promise<void> {
    return this.#inner.dispose();
  }
}

describe('Pool warm-up', function () {
  const nodes: ClusterNode[] = [];
  const stoppedPids: number[] = [];
  let address = 40;

  async function parentNode(): Promise<ClusterNode> {
    const node = await startNode({ name: `warm@127.0.0.${address++}`, port: 0, cookie: 'warm', log: false });
    nodes.push(node);
    return node;
  }

  function options(node: ClusterNode, extra: Partial<PoolOptions> & { max: number }): PoolOptions {
    return { name: 'warm', node, backend: new ProcessBackend({ stdio: 'ignore' }), shutdownTimeout: 1000, failsafeTimeout: 3000, ...extra };
  }

  afterEach(async function () {
    for (const pid of stoppedPids.splice(0)) if (alive(pid)) process.kill(pid, 'SIGCONT');
    await stopAllPools();
    await Promise.all(nodes.splice(0).map((n) => n.stop()));
  });

  it('warms every min runner with calls before start resolves, and none of them shows: no trace, no call event, no load', async function () {
    const node = await parentNode();
    const counts = countCalls(node);
    let traced = 0;
    const onStart = (): void => void traced++;
    dc.subscribe(`tracing:${CHANNELS.call}:start`, onStart);
    let pool;
    try {
      pool = await startPool(options(node, { min: 2, max: 2 }));
    } finally {
      dc.unsubscribe(`tracing:${CHANNELS.call}:start`, onStart);
    }
    const runners = pool.status().runners;
    expect(runners).to.have.length(2);
    for (const runner of runners) {
      expect(counts.get(runner.node!), `warm-up calls to ${runner.id}`).to.be.above(100);
      expect(runner.load).to.equal(0);
    }
    expect(traced).to.equal(0);
    let events = 0;
    pool.on('call', () => events++);
    expect(await pool.call((a: number, b: number) => a * b, [6, 7])).to.equal(42);
    expect(events).to.equal(1);
  });

  it('warms only the min runners: one booted later for a waiting call gets that call and nothing else', async function () {
    const node = await parentNode();
    const counts = countCalls(node);
    const pool = await startPool(options(node, { min: 1, max: 2, maxConcurrency: 1 }));
    const [first] = pool.status().runners;
    expect(counts.get(first!.node!)).to.be.above(100);
    const results = await Promise.all([1, 2].map((x) => pool.call(async (n: number) => {
      await new Promise((resolve) => setTimeout(resolve, 300));
      return n;
    }, [x], { timeout: 30_000 })));
    expect(results).to.deep.equal([1, 2]);
    const second = pool.status().runners.find((r) => r.id !== first!.id);
    expect(second, 'a second runner').to.not.equal(undefined);
    expect(counts.get(second!.node!)).to.equal(1);
  });

  it('is skipped with warmUp: false, with min 0 and for singleUse pools', async function () {
    const node = await parentNode();
    const counts = countCalls(node);
    const off = await startPool(options(node, { name: 'warm-off', min: 1, max: 1, warmUp: false }));
    const none = await startPool(options(node, { name: 'warm-none', min: 0, max: 1, warmUp: true }));
    const single = await startPool(options(node, { name: 'warm-single', min: 1, max: 1, singleUse: true }));
    expect([...counts.values()].reduce((a, b) => a + b, 0)).to.equal(0);
    expect(await off.call(() => 'off')).to.equal('off');
    expect(await none.call(() => 'none')).to.equal('none');
    expect(await single.call(() => 'single')).to.equal('single');
  });

  it('goes on with start when a runner dies during its warm-up: start resolves, the pool replaces the runner', async function () {
    const node = await parentNode();
    const backend = new PidRecorder();
    let killed = false;
    countCalls(node, (_runner, n) => {
      if (n === 300 && !killed) {
        killed = true;
        process.kill(backend.pids[0]!, 'SIGKILL');
      }
    });
    const { value: pool, ms } = await settlesWithin(startPool(options(node, { min: 1, max: 1, backend })), 30_000, 'Pool.start');
    expect(killed).to.equal(true);
    expect(ms).to.be.below(30_000);
    expect(await pool!.call(() => process.pid, [], { timeout: 30_000 })).to.equal(backend.pids[1]);
  });

  it('settles start, and the pool still stops and leaves no runner, when its node stops during the warm-up', async function () {
    const node = await parentNode();
    const backend = new PidRecorder();
    let nodeStopped: Promise<void> | undefined;
    countCalls(node, (_runner, n) => {
      if (n === 300 && nodeStopped === undefined) nodeStopped = node.stop();
    });
    const { value: pool } = await settlesWithin(startPool(options(node, { min: 1, max: 1, backend })), 30_000, 'Pool.start');
    expect(nodeStopped, 'the node was stopped during the warm-up').to.not.equal(undefined);
    await nodeStopped;
    await settlesWithin(pool!.stop(), 30_000, 'pool.stop()');
    await waitFor(() => !alive(backend.pids[0]!), 'the runner process to be gone', 20_000);
  });

  it('holds start at most about its budget when a runner stops answering during the warm-up', async function () {
    const node = await parentNode();
    const backend = new PidRecorder();
    let stoppedAt = 0;
    countCalls(node, (_runner, n) => {
      if (n === 300 && stoppedAt === 0) {
        stoppedAt = performance.now();
        stoppedPids.push(backend.pids[0]!);
        process.kill(backend.pids[0]!, 'SIGSTOP');
      }
    });
    const { value: pool } = await settlesWithin(startPool(options(node, { min: 1, max: 1, backend })), 30_000, 'Pool.start');
    expect(stoppedAt).to.be.above(0);
    // Its calls' deadline is the budget: start goes on after about twice the budget (generous for a loaded machine).
    expect(performance.now() - stoppedAt).to.be.below(WARM_UP_BUDGET.maxMs * 2 + 2000);
    expect(pool!.status().runners[0]!.load).to.equal(0);
    process.kill(backend.pids[0]!, 'SIGCONT');
    expect(await pool!.call(() => 'answering again', [], { timeout: 30_000 })).to.equal('answering again');
  });
});
