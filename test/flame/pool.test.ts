import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dispatch, query, type Ref } from 'nact';
import { ProcessBackend } from '../../src/backends/process/backend.js';
import { LocalBackend } from '../../src/backends/local/backend.js';
import { moduleRef } from '../../src/flame/fn-ref.js';
import type { PoolOptions } from '../../src/flame/options.js';
import { startNode, type ClusterNode } from '../../src/cluster/node.js';
import { Pool } from '../../src/flame/pool.js';
import { linkTrafficChannel } from '../../src/observability/diagnostics.js';
import {
  AbortError, BootError, BootTimeoutError, CallTimeoutError, CheckoutTimeoutError, ClosureError, PoolOverloadedError,
  PoolStoppedError, RemoteError, RunnerDownError,
} from '../../src/errors.js';
import { alive, runnerPids, ScriptedBoots, startPool } from '../helpers/pools.js';
import { settlesWithin, waitFor } from '../helpers/wait.js';
import type * as Jobs from '../fixtures/pool-jobs.js';

const JOBS = new URL('../fixtures/pool-jobs.js', import.meta.url);
const pid = moduleRef<typeof Jobs.pid>(JOBS, 'pid');
const slow = moduleRef<typeof Jobs.slow>(JOBS, 'slow');
const heldUntil = moduleRef<typeof Jobs.heldUntil>(JOBS, 'heldUntil');
const cooperative = moduleRef<typeof Jobs.cooperative>(JOBS, 'cooperative');
const fail = moduleRef<typeof Jobs.fail>(JOBS, 'fail');
const markedCounter = moduleRef(JOBS, 'markedCounter');

function options(extra: Partial<PoolOptions> & { max: number }): PoolOptions {
  return { backend: new ProcessBackend({ stdio: 'ignore' }), shutdownTimeout: 1000, failsafeTimeout: 3000, ...extra };
}

let dir: string;
const nodes: ClusterNode[] = [];
beforeEach(function () {
  dir = mkdtempSync(join(tmpdir(), 'flame-pool-'));
});
afterEach(async function () {
  rmSync(dir, { recursive: true, force: true });
  await Promise.all(nodes.splice(0).map((n) => n.stop()));
});

describe('Pool', function () {
  describe('calls', function () {
    it('runs a closure on a runner process and returns its result', async function () {
      const pool = await startPool(options({ name: 'closure', max: 1 }));
      expect(await pool.call((a: number, b: number) => a + b, [1, 2])).to.equal(3);
      const remotePid = await pool.call(() => process.pid);
      expect(remotePid).to.not.equal(process.pid);
      expect(runnerPids(pool)).to.deep.equal([remotePid]);
    });

    it('runs a module export the runner imports itself (moduleRef)', async function () {
      const pool = await startPool(options({ name: 'module', max: 1 }));
      const answer: number = await pool.call(slow, [1]);
      expect(answer).to.equal(runnerPids(pool)[0]);
    });

    it('emits a call event with where each call ran, how long it waited and ran, and its error', async function () {
      const pool = await startPool(options({ name: 'events', max: 1 }));
      const calls: import('../../src/flame/pool.js').CallInfo[] = [];
      pool.on('call', (info) => calls.push(info));
      await pool.call(slow, [50]);
      await pool.call(fail, ['nope']).catch(() => {});
      expect(calls).to.have.length(2);
      expect(calls[0]).to.include({ runner: 'events-1', error: undefined });
      expect(calls[0]!.waitMs).to.be.above(0);
      expect(calls[0]!.runMs).to.be.at.least(45);
      expect(calls[1]!.error).to.be.instanceOf(RemoteError);
    });

    it('fails only the call whose call listener threw, with that error, and keeps the runner\'s link', async function () {
      const pool = await startPool(options({ name: 'throwing-listener', max: 1, maxConcurrency: 10 }));
      const runner = await pool.call(() => process.pid);
      const boom = new Error('listener bug');
      let throwOnce = true;
      pool.on('call', () => {
        if (throwOnce) {
          throwOnce = false;
          throw boom;
        }
      });
      const results = await Promise.allSettled(Array.from({ length: 5 }, (_, i) => pool.call((n: number) => n * 2, [i])));
      expect(results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason)).to.deep.equal([boom]);
      expect(results.filter((r) => r.status === 'fulfilled')).to.have.length(4);
      expect(await pool.call(() => process.pid)).to.equal(runner);
      expect(pool.status().runners.map((r) => r.state)).to.deep.equal(['ready']);
    });

    it('answers calls whose function returns a value, a promise or a foreign thenable, and rejects those that throw', async function () {
      const pool = await startPool(options({ name: 'result-kinds', max: 1 }));
      expect(await pool.call((n: number) => n + 1, [1])).to.equal(2);
      expect(await pool.call(async (n: number) => n + 2, [1])).to.equal(3);
      expect(await pool.call((n: number) => ({ then: (resolve: (v: number) => void) => resolve(n + 3) }), [1])).to.equal(4);
      const thrown = await pool.call(() => {
        throw new RangeError('sync throw');
      }).then(() => undefined, (e: unknown) => e);
      expect(thrown).to.be.instanceOf(RangeError).with.property('message', 'sync throw');
      const thenThrows = await pool.call(() => ({ then: () => { throw new TypeError('then throws'); } })).then(() => undefined, (e: unknown) => e);
      expect(thenThrows).to.be.instanceOf(TypeError).with.property('message', 'then throws');
    });

    it('sends a closure\'s source once per runner, and again when the runner no longer has it', async function () {
      const pool = await startPool(options({ name: 'closure-ids', max: 1 }));
      // Distinct closures (each shippable: no captured variable), made from source.
      const closures = Array.from({ length: 1002 }, (_, i) => new Function(`return (x) => x + ${i}`)() as (x: number) => number);
      const first = closures[0]!;
      const bytes: number[] = [];
      const count = (m: unknown): void => {
        const message = m as { direction: string; bytes: number; node: string };
        if (message.direction === 'out') bytes.push(message.bytes);
      };
      linkTrafficChannel.subscribe(count);
      try {
        expect(await pool.call(first, [1])).to.equal(1);
        expect(await pool.call(first, [2])).to.equal(2);
      } finally {
        linkTrafficChannel.unsubscribe(count);
      }
      // The second call carries the closure's id, not its source and hash (32 characters alone).
      // (Before them, the parent answered the runner's announcement.)
      const [full, byId] = bytes.slice(-2) as [number, number];
      expect(byId).to.be.at.most(full - 40);
      // A runner keeps 1000 closures: the first is forgotten after 1001 others, and sent again.
      for (let i = 1; i < closures.length; i += 50) {
        expect(await Promise.all(closures.slice(i, i + 50).map((fn, j) => pool.call(fn, [0])))).to.deep.equal(closures.slice(i, i + 50).map((_, j) => i + j));
      }
      bytes.length = 0;
      linkTrafficChannel.subscribe(count);
      try {
        expect(await pool.call(first, [3])).to.equal(3);
      } finally {
        linkTrafficChannel.unsubscribe(count);
      }
      // Its id (refused by the runner), then the closure in full.
      expect(bytes).to.have.length(2);
      expect(bytes[0]).to.be.at.most(bytes[1]! - 40);
      expect(pool.status().runners.map((r) => r.state)).to.deep.equal(['ready']);
    });

    it('runs a call that blocks its runner\'s event loop for seconds (pings go unanswered meanwhile)', async function () {
      const pool = await startPool(options({ name: 'cpu-bound', max: 1 }));
      const spun = await pool.call((ms: number) => {
        const end = Date.now() + ms;
        let spins = 0;
        while (Date.now() < end) spins++;
        return spins > 0;
      }, [6000], { timeout: 20_000 });
      expect(spun).to.equal(true);
    });

    it('refuses a closure that captures a variable before booting anything', async function () {
      const pool = await startPool(options({ name: 'refuse', max: 1 }));
      const secret = 42;
      const error = await pool.call(() => secret).then(() => undefined, (e: unknown) => e);
      expect(error).to.be.instanceOf(ClosureError);
      expect((error as Error).message).to.match(/reads "secret" from its enclosing scope/);
      expect(pool.status().runners).to.have.length(0);
    });

    it('rejects with the remote exception: class name, message, code and remote stack', async function () {
      const pool = await startPool(options({ name: 'remote-error', max: 1 }));
      const error = await pool.call(fail, ['over the limit']).then(() => undefined, (e: unknown) => e);
      expect(error).to.be.instanceOf(RemoteError);
      expect(error).to.include({ name: 'QuotaExceeded', message: 'over the limit', code: 'E_QUOTA' });
      expect((error as Error).stack).to.match(/at \[remote-error-1@127\.2\.\d+\.\d+:\d+\] .*pool-jobs\.js/);
      const builtin = await pool.call(() => JSON.parse('{')).then(() => undefined, (e: unknown) => e);
      expect(builtin).to.be.instanceOf(SyntaxError);
      expect((builtin as Error).stack).to.match(/flame:\/\/fn\/[0-9a-f]+\.js/);
    });
  });

  describe('cast', function () {
    it('runs the function on a runner without waiting for it', async function () {
      const pool = await startPool(options({ name: 'cast', max: 1 }));
      const marker = join(dir, 'cast');
      pool.cast(async (path: string) => {
        const { writeFileSync } = await import('node:fs');
        writeFileSync(path, String(process.pid));
      }, [marker]);
      // The file exists before writeFileSync has written it: wait for its content.
      await waitFor(() => existsSync(marker) && readFileSync(marker, 'utf8') !== '', 'the cast to run');
      expect(Number(readFileSync(marker, 'utf8'))).to.equal(runnerPids(pool)[0]);
    });

    it('reports a failed cast as a castError event, since nobody awaits it', async function () {
      const pool = await startPool(options({ name: 'cast-error', max: 1 }));
      const failed = new Promise<Error>((resolve) => pool.once('castError', resolve));
      pool.cast(fail, ['nobody is listening']);
      const error = await failed;
      expect(error).to.be.instanceOf(RemoteError).and.include({ name: 'QuotaExceeded', message: 'nobody is listening' });
    });
  });

  describe('sizing', function () {
    it('grows to max when every runner is at maxConcurrency, and no further', async function () {
      const pool = await startPool(options({ name: 'grow', max: 3, maxConcurrency: 2 }));
      let peak = 0;
      let peakLoad = 0;
      const watch = setInterval(() => {
        const { runners } = pool.status();
        peak = Math.max(peak, runners.length);
        peakLoad = Math.max(peakLoad, ...runners.map((r) => r.load));
      }, 5);
      try {
        const pids = await Promise.all(Array.from({ length: 12 }, () => pool.call(slow, [300])));
        expect(new Set(pids).size).to.equal(3);
      } finally {
        clearInterval(watch);
      }
      expect(peak).to.equal(3);
      expect(peakLoad).to.equal(2);
    });

    it('reaches max runners with maxConcurrency 1 under parallel calls (flame#56)', async function () {
      const pool = await startPool(options({ name: 'one-each', max: 3, maxConcurrency: 1 }));
      // Each call holds its slot until all three run at once, however unevenly the runners boot.
      const release = join(dir, 'release');
      const calls = Array.from({ length: 3 }, () => pool.call(heldUntil, [release, 30_000]));
      await waitFor(() => pool.status().runners.filter((r) => r.load === 1).length === 3, 'three runners with a call each', 30_000);
      writeFileSync(release, '');
      const pids = await Promise.all(calls);
      expect(new Set(pids).size).to.equal(3);
    });

    it('serves queued callers in order as capacity frees', async function () {
      const pool = await startPool(options({ name: 'fifo', max: 1, maxConcurrency: 1 }));
      await pool.call(pid);
      const order: number[] = [];
      const calls = Array.from({ length: 5 }, (_, i) => pool.call(slow, [20]).then(() => order.push(i)));
      expect(pool.status().queued).to.equal(4);
      await Promise.all(calls);
      expect(order).to.deep.equal([0, 1, 2, 3, 4]);
    });

    it('shrinks idle runners back to min, and their processes exit', async function () {
      const pool = await startPool(options({ name: 'shrink', min: 1, max: 3, maxConcurrency: 1, idleShutdownAfter: 300 }));
      await Promise.all(Array.from({ length: 3 }, () => pool.call(slow, [200])));
      const pids = runnerPids(pool);
      expect(pids).to.have.length(3);
      await waitFor(() => pool.status().runners.length === 1, 'the pool to shrink to min', 15_000);
      await waitFor(() => pids.filter(alive).length === 1, 'idle runner processes to exit');
      expect(pool.status().runners[0]!.state).to.equal('ready');
    });

    it('replaces a min runner that dies', async function () {
      const pool = await startPool(options({ name: 'replace', min: 1, max: 1 }));
      const first = await pool.call(pid);
      process.kill(first, 'SIGKILL');
      await waitFor(() => pool.status().runners.some((r) => r.state === 'ready' && !r.description?.includes(`pid ${first} `)), 'a replacement runner', 15_000);
      expect(await pool.call(pid)).to.not.equal(first);
    });

    it('reports a SIGKILLed runner down once, though its socket and its process both report the loss', async function () {
      const node = await startNode({ name: 'once-parent@127.0.0.33', port: 0, cookie: 'once', log: false });
      nodes.push(node);
      const lines: string[] = [];
      const pool = await startPool(options({ name: 'once', node, min: 1, max: 1, log: 'debug', logSink: (_level, line) => lines.push(line) }));
      const downs: string[] = [];
      pool.on('runnerDown', (runner) => downs.push(runner.id));
      // Registered after the pool's own listener, so the pool has seen the loss when this runs.
      let nodeDown = false;
      node.on('nodedown', () => (nodeDown = true));
      const [victim] = runnerPids(pool);
      process.kill(victim!, 'SIGKILL');
      await waitFor(() => nodeDown && lines.some((l) => l.includes('runner once-1 ended (reported by the backend)')), 'both reports of the loss', 15_000);
      await waitFor(() => pool.status().runners.some((r) => r.id === 'once-2' && r.state === 'ready'), 'the replacement runner', 15_000);
      expect(downs).to.deep.equal(['once-1']);
      expect(lines.filter((l) => l.includes('runner once-1:') && l.includes(' -> ')).map((l) => l.replace(/ \((\w+).*/, ' ($1)'))).to.deep.equal([
        '[pool once] runner once-1: booting -> ready (connected)',
        '[pool once] runner once-1: ready -> lost (down)',
        '[pool once] runner once-1: lost -> stopped (gone)',
      ]);
    });

    it('uses a runner for one call only under singleUse, then its process exits', async function () {
      const pool = await startPool(options({ name: 'single', max: 2, singleUse: true }));
      const a = await pool.call(pid);
      const b = await pool.call(pid);
      expect(a).to.not.equal(b);
      await waitFor(() => !alive(a), 'the first single-use runner to exit');
    });
  });

  describe('failures and deadlines', function () {
    it('fails a boot that never connects back with BootTimeoutError and removes its process', async function () {
      const pidFile = join(dir, 'pid');
      const backend = new ProcessBackend({
        command: [process.execPath, '-e', 'require("fs").writeFileSync(process.env.PID_FILE, String(process.pid)); setInterval(() => {}, 1000)'],
        env: { PID_FILE: pidFile },
        stdio: 'ignore',
      });
      // Long enough for Node to start and write its pid on a loaded machine: the test is about what happens after.
      const error = await startPool({ name: 'never', backend, min: 1, max: 1, bootTimeout: 4000, shutdownTimeout: 100 }).then(() => undefined, (e: unknown) => e);
      expect(error).to.be.instanceOf(BootTimeoutError);
      expect((error as Error).message).to.match(/did not boot and connect back within bootTimeout \(4000 ms\)/);
      const stray = Number(readFileSync(pidFile, 'utf8'));
      await waitFor(() => !alive(stray), 'the stuck runner process to be removed');
    });

    it('fails a boot whose process exits at once with the reason, without waiting for bootTimeout', async function () {
      const backend = new ProcessBackend({ command: [process.execPath, '-e', 'console.error("cannot start: no GPU"); process.exit(3)'], stdio: 'ignore' });
      const { error, ms } = await settlesWithin(startPool({ name: 'crash', backend, min: 1, max: 1, bootTimeout: 20_000 }), 10_000, 'Pool.start');
      expect(error).to.be.instanceOf(BootError);
      expect((error as Error).message).to.match(/exited with code 3: cannot start: no GPU/);
      expect(ms).to.be.below(5000);
    });

    it('gives callers the boot error after repeated boot failures instead of retrying forever', async function () {
      const backend = new ProcessBackend({ command: [process.execPath, '-e', 'process.exit(1)'], stdio: 'ignore' });
      const pool = await startPool({ name: 'broken', backend, max: 2, bootTimeout: 5000, timeout: 30_000 });
      const { error } = await settlesWithin(pool.call(pid), 20_000, 'the call');
      expect(error).to.be.instanceOf(BootError);
      expect((error as Error).message).to.match(/3 runner boots failed in a row/);
    });

    it('serves waiting callers from a busy healthy runner while every new boot fails, instead of failing them with BootError', async function () {
      const backend = new ScriptedBoots(new ProcessBackend({ stdio: 'ignore' }), (n) => n > 1);
      const pool = await startPool({ name: 'busy-healthy', backend, min: 1, max: 3, maxConcurrency: 1, shutdownTimeout: 1000 });
      let bootFailures = 0;
      pool.on('bootFailed', () => bootFailures++);
      const [healthy] = runnerPids(pool);
      const busy = pool.call(slow, [4000]);
      const waiters = [pool.call(pid), pool.call(pid), pool.call(pid)];
      await waitFor(() => bootFailures >= 3, 'three boots to fail while the only runner is busy', 8000);
      // No failed runner is kept; the next boot may already be under way (callers still wait).
      const runners = pool.status().runners;
      expect(runners.filter((r) => r.state !== 'booting').map((r) => r.state)).to.deep.equal(['ready']);
      expect(runners).to.have.length.at.most(3); // max
      expect(await busy).to.equal(healthy);
      expect(await Promise.all(waiters)).to.deep.equal([healthy, healthy, healthy]);
    });

    it('rejects a call whose runner is SIGKILLed mid-call with RunnerDownError, and recovers', async function () {
      const pool = await startPool(options({ name: 'killed', max: 1 }));
      const victim = await pool.call(pid);
      const running = settlesWithin(pool.call(slow, [10_000]), 8000, 'the call');
      await waitFor(() => pool.status().runners[0]?.load === 1, 'the call to start');
      process.kill(victim, 'SIGKILL');
      const { error, ms } = await running;
      expect(error).to.be.instanceOf(RunnerDownError);
      expect((error as RunnerDownError).code).to.equal('FLAME_ERR_RUNNER_DOWN');
      expect(error).to.include({ runner: 'killed-1', attempts: 1 });
      expect((error as RunnerDownError).node).to.match(/^killed-1@127\./);
      expect(ms).to.be.below(5000);
      const next = await pool.call(pid);
      expect(next).to.not.equal(victim);
    });

    it('cancels the remote work and frees the slot when a call passes its timeout', async function () {
      const pool = await startPool(options({ name: 'timeout', max: 1, maxConcurrency: 1 }));
      await pool.call(pid);
      const marker = join(dir, 'timeout');
      const error = await pool.call(cooperative, [marker], { timeout: 400 }).then(() => undefined, (e: unknown) => e);
      expect(error).to.be.instanceOf(CallTimeoutError).and.include({ runner: 'timeout-1', timeout: 400 });
      // The runner creates the file, then writes it: wait for its content, not its existence.
      await waitFor(() => existsSync(marker) && readFileSync(marker, 'utf8') !== '', 'the remote work to observe its cancellation');
      expect(readFileSync(marker, 'utf8')).to.match(/^cancelled: call exceeded its deadline/);
      expect(pool.status().runners[0]!.load).to.equal(0);
      expect(await pool.call((x: number) => x * 2, [21])).to.equal(42);
    });

    it('cancels the remote work when the caller aborts with an AbortSignal', async function () {
      const pool = await startPool(options({ name: 'abort', max: 1 }));
      await pool.call(pid);
      const marker = join(dir, 'abort');
      const controller = new AbortController();
      const call = pool.call(cooperative, [marker], { signal: controller.signal }).then(() => undefined, (e: unknown) => e);
      await waitFor(() => pool.status().runners[0]?.load === 1, 'the call to start');
      controller.abort(new Error('user went away'));
      expect(await call).to.be.instanceOf(AbortError);
      await waitFor(() => existsSync(marker) && readFileSync(marker, 'utf8') !== '', 'the remote work to observe the abort');
      expect(readFileSync(marker, 'utf8')).to.match(/^cancelled: request "flame.call" to .* aborted/);
      expect(pool.status().runners[0]!.load).to.equal(0);
    });

    it('refuses callers beyond maxQueue with PoolOverloadedError', async function () {
      const pool = await startPool(options({ name: 'overload', max: 1, maxConcurrency: 1, maxQueue: 2 }));
      await pool.call(pid);
      const running = pool.call(slow, [300]);
      const queued = [pool.call(pid), pool.call(pid)];
      const error = await pool.call(pid).then(() => undefined, (e: unknown) => e);
      expect(error).to.be.instanceOf(PoolOverloadedError);
      expect((error as Error).message).to.match(/has 2 callers waiting \(maxQueue 2\)/);
      await Promise.all([running, ...queued]);
    });

    it('tells a caller still waiting at its deadline that the pool was at max', async function () {
      const pool = await startPool(options({ name: 'at-max', max: 1, maxConcurrency: 1 }));
      await pool.call(pid);
      const busy = pool.call(slow, [1500]);
      const error = await pool.call(pid, [], { timeout: 300 }).then(() => undefined, (e: unknown) => e);
      expect(error).to.be.instanceOf(CheckoutTimeoutError).and.include({ atMax: true, max: 1 });
      expect((error as Error).message).to.match(/pool at-max is at max \(1 runners x 1 slots, all busy\)/);
      await busy;
    });
  });

  describe('placeChild', function () {
    it('places an actor on a runner, driven with nact dispatch and query across processes', async function () {
      const pool = await startPool(options({ name: 'place', max: 1 }));
      const counter = await pool.placeChild<Jobs.CounterMsg>(markedCounter, [join(dir, 'unused'), 10]);
      dispatch(counter, { type: 'inc' });
      dispatch(counter, { type: 'inc' });
      expect(await query(counter, (sender: Ref<number>) => ({ type: 'get' as const, sender }), 5000)).to.equal(12);
      expect(pool.status().runners[0]!.load).to.equal(1);
    });

    it('refuses a factory that does not spawn under the parent it is given', async function () {
      const pool = await startPool(options({ name: 'misplaced', max: 1 }));
      const error = await pool.placeChild(moduleRef(JOBS, 'misplaced')).then(() => undefined, (e: unknown) => e);
      expect(String(error)).to.match(/must spawn the actor under the parent ref it is given/);
      expect(pool.status().runners[0]!.load).to.equal(0);
    });

    it('stops a linked actor when its caller\'s node goes down, and the runner exits within the failsafe', async function () {
      const node = await startNode({ name: 'caller@127.0.0.30', port: 0, cookie: 'place-cookie', log: false });
      const pool = await startPool(options({ name: 'linked', max: 1, node, failsafeTimeout: 1500 }));
      const marker = join(dir, 'stopped');
      await pool.placeChild(markedCounter, [marker]);
      const [runnerPid] = runnerPids(pool);
      await node.stop();
      await waitFor(() => existsSync(marker), 'the placed actor to stop');
      await waitFor(() => !alive(runnerPid!), 'the orphaned runner to exit', 5000);
    });

    it('frees the slot when the placed actor stops', async function () {
      const pool = await startPool(options({ name: 'child-exit', max: 1 }));
      const counter = await pool.placeChild(markedCounter, [join(dir, 'stopped')]);
      expect(pool.status().runners[0]!.load).to.equal(1);
      const { stop } = await import('nact');
      stop(counter);
      await waitFor(() => pool.status().runners[0]?.load === 0, 'the slot to be freed');
    });
  });

  describe('stop', function () {
    it('drains in-flight calls, refuses new ones, and leaves no runner process', async function () {
      const pool = await startPool(options({ name: 'stop', max: 2, maxConcurrency: 1, shutdownTimeout: 5000 }));
      const pids = await Promise.all([pool.call(slow, [200]), pool.call(slow, [200])]);
      const inFlight = pool.call(slow, [300]);
      const stopping = pool.stop();
      const refused = await pool.call(pid).then(() => undefined, (e: unknown) => e);
      expect(refused).to.be.instanceOf(PoolStoppedError);
      expect(await inFlight).to.be.a('number');
      await stopping;
      expect(pool.status()).to.include({ state: 'stopped', queued: 0 });
      await waitFor(() => pids.every((p) => !alive(p)), 'every runner process to exit');
    });
  });

  describe('explicit resource management', function () {
    it('stops the pool at the end of an `await using` block', async function () {
      let runnerPid = 0;
      {
        await using pool = await Pool.start(options({ name: 'disposed', max: 1 }));
        runnerPid = await pool.call(pid);
        expect(alive(runnerPid)).to.equal(true);
      }
      await waitFor(() => !alive(runnerPid), 'the disposed pool\'s runner to exit');
    });
  });

  describe('with the LocalBackend', function () {
    it('runs calls and places actors on in-process runners', async function () {
      const pool = await startPool({ name: 'local', backend: new LocalBackend(), max: 2, shutdownTimeout: 1000 });
      expect(await pool.call(() => process.pid)).to.equal(process.pid);
      const counter = await pool.placeChild<Jobs.CounterMsg>(markedCounter, [join(dir, 'local'), 1]);
      expect(await query(counter, (sender: Ref<number>) => ({ type: 'get' as const, sender }), 5000)).to.equal(1);
    });
  });
});
