import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProcessBackend } from '../../src/backends/process/backend.js';
import { moduleRef } from '../../src/flame/fn-ref.js';
import type { PoolOptions } from '../../src/flame/options.js';
import { AbortError, CallTimeoutError, InvalidOptionError, RemoteError, RunnerDownError } from '../../src/errors.js';
import { alive, runnerPids, startPool } from '../helpers/pools.js';
import { settlesWithin, waitFor } from '../helpers/wait.js';
import type * as Jobs from '../fixtures/stream-jobs.js';

const JOBS = new URL('../fixtures/stream-jobs.js', import.meta.url);
const count = moduleRef<typeof Jobs.count>(JOBS, 'count');
const endless = moduleRef<typeof Jobs.endless>(JOBS, 'endless');
const endlessSync = moduleRef<typeof Jobs.endlessSync>(JOBS, 'endlessSync');
const failsAfter = moduleRef<typeof Jobs.failsAfter>(JOBS, 'failsAfter');
const slowPair = moduleRef<typeof Jobs.slowPair>(JOBS, 'slowPair');
const readable = moduleRef<typeof Jobs.readable>(JOBS, 'readable');

function options(extra: Partial<PoolOptions> & { max: number }): PoolOptions {
  return { backend: new ProcessBackend({ stdio: 'ignore' }), shutdownTimeout: 1000, failsafeTimeout: 3000, ...extra };
}

/** The highest index the endless generator produced on the runner. */
function produced(dir: string): number {
  const file = join(dir, 'produced');
  return existsSync(file) ? Number(readFileSync(file, 'utf8')) : -1;
}

let dir: string;
beforeEach(function () {
  dir = mkdtempSync(join(tmpdir(), 'flame-stream-'));
});
afterEach(function () {
  rmSync(dir, { recursive: true, force: true });
});

describe('Pool.stream', function () {
  it('delivers every item in order and holds a slot until the stream ends', async function () {
    const pool = await startPool(options({ name: 'stream-order', max: 1 }));
    const stream = pool.stream(count, [2000], { highWaterMark: 16 });
    const seen: number[] = [];
    for await (const n of stream) {
      seen.push(n);
      if (seen.length === 1) expect(pool.status().runners[0]!.load).to.equal(1);
    }
    expect(seen).to.deep.equal(Array.from({ length: 2000 }, (_, i) => i));
    expect(pool.status().runners[0]!.load).to.equal(0);
  });

  it('streams from a closure async generator, a Node Readable and an iterable', async function () {
    const pool = await startPool(options({ name: 'stream-kinds', max: 1 }));
    const doubled: number[] = [];
    for await (const n of pool.stream(async function* (k: number) {
      for (let i = 0; i < k; i++) yield i * 2;
    }, [4])) doubled.push(n);
    expect(doubled).to.deep.equal([0, 2, 4, 6]);
    const chunks: unknown[] = [];
    for await (const chunk of pool.stream(readable, [['a', 'b', 'c']])) chunks.push(chunk);
    expect(chunks).to.deep.equal(['a', 'b', 'c']);
    const fromArray: unknown[] = [];
    for await (const x of pool.stream((n: number) => [n, n + 1], [7])) fromArray.push(x);
    expect(fromArray).to.deep.equal([7, 8]);
  });

  it('pauses the remote generator while the caller holds highWaterMark unconsumed items (backpressure)', async function () {
    const pool = await startPool(options({ name: 'stream-pressure', max: 1 }));
    const stream = pool.stream(endless, [dir], { highWaterMark: 8, timeout: 60_000 });
    for (let i = 0; i < 5; i++) expect((await stream.next()).value).to.equal(i);
    // Round trips to the same runner let its event loop turn many times: an unpaused generator
    // (one item per turn) would run thousands of items ahead meanwhile.
    for (let i = 0; i < 50; i++) await pool.call(() => 1);
    // Consumed 5; at most 8 buffered here and 8 prefetched there, plus the one in progress.
    expect(produced(dir)).to.be.within(5, 5 + 8 + 8 + 1);
    await stream.return();
  });

  it('keeps order with several pulls in flight, whatever the highWaterMark (1, 5, 64)', async function () {
    const pool = await startPool(options({ name: 'stream-credit', max: 1 }));
    for (const highWaterMark of [1, 5, 64]) {
      const seen: number[] = [];
      for await (const n of pool.stream(count, [700], { highWaterMark })) seen.push(n);
      expect(seen, `highWaterMark ${highWaterMark}`).to.deep.equal(Array.from({ length: 700 }, (_, i) => i));
    }
    expect(pool.status().runners[0]!.load).to.equal(0);
  });

  it('steps a synchronous generator within the same bound, and cancels it on break', async function () {
    const pool = await startPool(options({ name: 'stream-sync', max: 1 }));
    const stream = pool.stream(endlessSync, [dir], { highWaterMark: 8, timeout: 60_000 });
    for (let i = 0; i < 5; i++) expect((await stream.next()).value).to.equal(i);
    for (let i = 0; i < 50; i++) await pool.call(() => 1);
    expect(produced(dir)).to.be.within(5, 5 + 8 + 8 + 1);
    await stream.return();
    expect(readFileSync(join(dir, 'finally'), 'utf8')).to.match(/^pid \d+$/);
  });

  it('rejects with InvalidOptionError when the iterator steps to something other than { value, done }', async function () {
    const pool = await startPool(options({ name: 'stream-bad-step', max: 1 }));
    const stream = pool.stream(() => ({ [Symbol.iterator]: () => ({ next: () => 42 }) }));
    const error = await stream.next().then(() => undefined, (e: unknown) => e);
    expect(error).to.be.instanceOf(InvalidOptionError);
    expect(await stream.next()).to.deep.equal({ value: undefined, done: true });
    await waitFor(() => pool.status().runners[0]!.load === 0, 'the stream to give its slot back');
  });

  it('cancels the remote generator on break: its finally runs on the runner before return() resolves', async function () {
    const pool = await startPool(options({ name: 'stream-break', max: 1 }));
    for await (const n of pool.stream(endless, [dir])) {
      if (n === 3) break;
    }
    expect(readFileSync(join(dir, 'finally'), 'utf8')).to.equal(`pid ${runnerPids(pool)[0]}`);
    expect(pool.status().runners[0]!.load).to.equal(0);
  });

  it('cancels the remote generator with await using', async function () {
    const pool = await startPool(options({ name: 'stream-using', max: 1 }));
    {
      await using stream = pool.stream(endless, [dir]);
      expect((await stream.next()).value).to.equal(0);
    }
    expect(existsSync(join(dir, 'finally'))).to.equal(true);
  });

  it('rejects the next next() with the remote error after the items before it, then ends', async function () {
    const pool = await startPool(options({ name: 'stream-error', max: 1 }));
    const stream = pool.stream(failsAfter, [3]);
    const seen: number[] = [];
    const error = await (async () => {
      for await (const n of stream) seen.push(n);
    })().then(() => undefined, (e: unknown) => e);
    expect(seen).to.deep.equal([0, 1, 2]);
    expect(error).to.be.instanceOf(RemoteError).and.include({ name: 'StreamBroke', code: 'E_STREAM_BROKE' });
    expect(await stream.next()).to.deep.equal({ value: undefined, done: true });
    expect(pool.status().runners[0]!.load).to.equal(0);
  });

  it('cancels at its deadline with CallTimeoutError and runs the remote finally', async function () {
    const pool = await startPool(options({ name: 'stream-deadline', max: 1 }));
    const stream = pool.stream(slowPair, [dir, 60_000], { timeout: 1500 });
    expect((await stream.next()).value).to.equal(runnerPids(pool)[0]);
    const { error } = await settlesWithin(stream.next(), 10_000, 'the second item');
    expect(error).to.be.instanceOf(CallTimeoutError);
    await waitFor(() => existsSync(join(dir, 'finally')), 'the remote finally');
    await waitFor(() => pool.status().runners[0]!.load === 0, 'the slot to be free');
  });

  it('cancels when its signal aborts with AbortError and runs the remote finally', async function () {
    const pool = await startPool(options({ name: 'stream-abort', max: 1 }));
    const controller = new AbortController();
    const stream = pool.stream(slowPair, [dir, 60_000], { signal: controller.signal });
    await stream.next();
    const second = stream.next();
    controller.abort();
    const { error } = await settlesWithin(second, 5000, 'the second item');
    expect(error).to.be.instanceOf(AbortError);
    await waitFor(() => existsSync(join(dir, 'finally')), 'the remote finally');
  });

  it('rejects with RunnerDownError when its runner is SIGKILLed mid-stream, and nothing hangs', async function () {
    const pool = await startPool(options({ name: 'stream-kill', max: 1 }));
    const stream = pool.stream(endless, [dir], { highWaterMark: 4, timeout: 60_000 });
    await stream.next();
    const [victim] = runnerPids(pool);
    process.kill(victim!, 'SIGKILL');
    const drained = (async () => {
      for (let i = 0; i < 10_000; i++) await stream.next();
      return 'never failed';
    })();
    const { error, value } = await settlesWithin(drained, 10_000, 'the stream after the kill');
    expect(value).to.equal(undefined);
    expect(error).to.be.instanceOf(RunnerDownError);
    expect((error as RunnerDownError).runner).to.equal('stream-kill-1');
    await waitFor(() => !alive(victim!), 'the runner to be gone');
    // The pool goes on: the next stream runs on a new runner.
    const after: number[] = [];
    for await (const n of pool.stream(count, [3])) after.push(n);
    expect(after).to.deep.equal([0, 1, 2]);
  });

  it('refuses bad options and non-array arguments at once', async function () {
    const pool = await startPool(options({ name: 'stream-options', max: 1 }));
    expect(() => pool.stream(count, [1], { highWaterMark: 0 })).to.throw(InvalidOptionError, /highWaterMark/);
    expect(() => pool.stream(count, 1 as unknown as [number])).to.throw(InvalidOptionError, /array/);
    const stream = pool.stream(() => 42);
    const error = await stream.next().then(() => undefined, (e: unknown) => e);
    expect(error).to.be.instanceOf(InvalidOptionError).and.match(/AsyncIterable/);
  });
});
