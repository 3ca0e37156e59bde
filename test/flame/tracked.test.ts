import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProcessBackend } from '../../src/backends/process/backend.js';
import { moduleRef } from '../../src/flame/fn-ref.js';
import type { PoolOptions } from '../../src/flame/options.js';
import type { RunnerStatus } from '../../src/flame/runner-handle.js';
import { RemoteError } from '../../src/errors.js';
import { heapAfterGc } from '../helpers/heap.js';
import { alive, runnerPids, startPool } from '../helpers/pools.js';
import { nextEvent, settlesWithin, waitFor } from '../helpers/wait.js';
import type * as Jobs from '../fixtures/stream-jobs.js';

const JOBS = new URL('../fixtures/stream-jobs.js', import.meta.url);
const tempResource = moduleRef<typeof Jobs.tempResource>(JOBS, 'tempResource');
const endless = moduleRef<typeof Jobs.endless>(JOBS, 'endless');

function options(extra: Partial<PoolOptions> & { max: number }): PoolOptions {
  return { backend: new ProcessBackend({ stdio: 'ignore' }), shutdownTimeout: 1000, failsafeTimeout: 3000, ...extra };
}

let dir: string;
beforeEach(function () {
  dir = mkdtempSync(join(tmpdir(), 'flame-tracked-'));
});
afterEach(function () {
  rmSync(dir, { recursive: true, force: true });
});

describe('Pool.track', function () {
  it('keeps its runner past idleShutdownAfter while the handle is held; releasing it lets the runner go', async function () {
    const pool = await startPool(options({ name: 'tracked-idle', max: 2, maxConcurrency: 1, idleShutdownAfter: 300 }));
    const path = join(dir, 'resource');
    const handle = await pool.track(tempResource, [path]);
    expect(handle.value).to.deep.equal({ path, pid: runnerPids(pool)[0] });
    expect(handle.runner).to.equal('tracked-idle-1');
    const [holder] = runnerPids(pool);
    // The held slot is the first runner's only one: this call boots a second runner, which then
    // idles out. The first runner has had no call for longer, and must still be there.
    const firstDown = nextEvent<[RunnerStatus, string]>(pool, 'runnerDown', 30_000);
    await pool.call(() => 1);
    const [gone] = await firstDown;
    expect(gone.id).to.equal('tracked-idle-2');
    expect(alive(holder!)).to.equal(true);
    expect(readFileSync(path, 'utf8')).to.equal('in use');
    expect(handle.state).to.equal('held');
    expect(pool.status().runners.map((r) => [r.id, r.load])).to.deep.equal([['tracked-idle-1', 1]]);

    const holderDown = nextEvent<[RunnerStatus, string]>(pool, 'runnerDown', 30_000);
    await handle.release();
    // release() resolves once the resource's release ran on the runner.
    expect(readFileSync(path, 'utf8')).to.equal('released');
    expect(handle.state).to.equal('released');
    expect((await holderDown)[0].id).to.equal('tracked-idle-1');
    await waitFor(() => !alive(holder!), 'the released runner to exit');
  });

  it('releases with await using, and a plain result keeps the runner without a release to run', async function () {
    const pool = await startPool(options({ name: 'tracked-using', max: 1 }));
    const path = join(dir, 'resource');
    {
      await using handle = await pool.track(tempResource, [path]);
      expect(handle.value.path).to.equal(path);
      expect(pool.status().runners[0]!.load).to.equal(1);
    }
    expect(readFileSync(path, 'utf8')).to.equal('released');
    expect(pool.status().runners[0]!.load).to.equal(0);
    const plain = await pool.track((n: number) => n * 2, [21]);
    expect(plain.value).to.equal(42);
    expect(pool.status().runners[0]!.load).to.equal(1);
    await plain.release();
    await plain.release();
    expect(pool.status().runners[0]!.load).to.equal(0);
  });

  it('releases a handle that was garbage-collected while held', async function () {
    const pool = await startPool(options({ name: 'tracked-gc', max: 1 }));
    const path = join(dir, 'resource');
    await (async () => {
      await pool.track(tempResource, [path]);
    })();
    expect(readFileSync(path, 'utf8')).to.equal('in use');
    await waitFor(async () => {
      await heapAfterGc();
      return readFileSync(path, 'utf8') === 'released';
    }, 'the collected handle to be released', 20_000, 50);
    await waitFor(() => pool.status().runners[0]!.load === 0, 'its slot to be free');
  });

  it('cancels a stream whose handle was garbage-collected unfinished (its finally runs on the runner)', async function () {
    const pool = await startPool(options({ name: 'tracked-stream-gc', max: 1 }));
    await (async () => {
      const stream = pool.stream(endless, [dir], { timeout: 120_000 });
      await stream.next();
    })();
    await waitFor(async () => {
      await heapAfterGc();
      return existsSync(join(dir, 'finally'));
    }, 'the collected stream to be cancelled', 20_000, 50);
    await waitFor(() => pool.status().runners[0]!.load === 0, 'its slot to be free');
  });

  it('does not hold up pool.stop (a held resource keeps a runner, it is not work in flight)', async function () {
    const pool = await startPool(options({ name: 'tracked-stop', max: 1, shutdownTimeout: 10_000 }));
    await pool.track(tempResource, [join(dir, 'resource')]);
    const { ms } = await settlesWithin(pool.stop(), 8000, 'pool.stop');
    expect(ms).to.be.below(8000);
  });

  it('frees the slot of a handle whose runner died (state lost), and a failing function holds nothing', async function () {
    const pool = await startPool(options({ name: 'tracked-lost', max: 1 }));
    const handle = await pool.track(tempResource, [join(dir, 'resource')]);
    const [victim] = runnerPids(pool);
    process.kill(victim!, 'SIGKILL');
    await waitFor(() => handle.state === 'lost', 'the handle to be lost');
    await handle.release();
    const error = await pool.track(() => {
      throw new RangeError('no resource');
    }).then(() => undefined, (e: unknown) => e);
    expect(error).to.be.instanceOf(RangeError);
    expect(error).to.not.be.instanceOf(RemoteError);
    expect(pool.status().runners.every((r) => r.load === 0)).to.equal(true);
  });
});
