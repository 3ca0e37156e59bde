import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProcessBackend } from '../../src/backends/process/backend.js';
import { moduleRef } from '../../src/flame/fn-ref.js';
import { BootError, RemoteError, RunnerDownError } from '../../src/errors.js';
import { alive, runnerPids, ScriptedBoots, startPool } from '../helpers/pools.js';
import { waitFor } from '../helpers/wait.js';
import type * as Jobs from '../fixtures/pool-jobs.js';

const JOBS = new URL('../fixtures/pool-jobs.js', import.meta.url);
const countedWork = moduleRef<typeof Jobs.countedWork>(JOBS, 'countedWork');
const countedFailure = moduleRef<typeof Jobs.countedFailure>(JOBS, 'countedFailure');

/** The pids in `<dir>/<id>.<kind>`: where call `id` started or finished, once per time. */
function lines(dir: string, id: number, kind: 'start' | 'done'): number[] {
  const file = join(dir, `${id}.${kind}`);
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number) : [];
}

/** How often call `id` started or finished on a runner. */
function count(dir: string, id: number, kind: 'start' | 'done'): number {
  return lines(dir, id, kind).length;
}

describe('Pool retries', function () {
  let dir: string;
  beforeEach(function () {
    dir = mkdtempSync(join(tmpdir(), 'flame-retries-'));
  });
  afterEach(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs each retried call to completion exactly once while runners are SIGKILLed mid-call', async function () {
    const pool = await startPool({
      name: 'chaos', backend: new ProcessBackend({ stdio: 'ignore' }), max: 3, maxConcurrency: 2, retries: 5, timeout: 40_000, shutdownTimeout: 500,
    });
    const ids = Array.from({ length: 12 }, (_, id) => id);
    const calls = ids.map((id) => pool.call(countedWork, [dir, id, 600]));
    /** Calls started and not finished on the runner with this pid, from the runner-side files. */
    const runningOn = (pid: number) => ids.reduce((n, id) => n + lines(dir, id, 'start').filter((p) => p === pid).length - lines(dir, id, 'done').filter((p) => p === pid).length, 0);
    // Chaos: three times, SIGKILL a runner while calls run on it.
    const killed: number[] = [];
    for (let round = 0; round < 3; round++) {
      let victim = 0;
      await waitFor(() => {
        victim = runnerPids(pool).find((p) => !killed.includes(p) && runningOn(p) > 0) ?? 0;
        return victim > 0;
      }, 'a runner with calls running on it', 20_000);
      process.kill(victim, 'SIGKILL');
      killed.push(victim);
      await waitFor(() => !alive(victim), 'the victim to die');
    }
    await Promise.all(calls);
    expect(ids.map((id) => count(dir, id, 'done'))).to.deep.equal(ids.map(() => 1));
    // Proof that the chaos cut calls short and they ran again elsewhere.
    expect(ids.reduce((n, id) => n + count(dir, id, 'start'), 0)).to.be.above(12);
  });

  it('never re-runs a call that failed with an exception of its own', async function () {
    const pool = await startPool({ name: 'no-retry', backend: new ProcessBackend({ stdio: 'ignore' }), max: 2, retries: 3, shutdownTimeout: 500 });
    const error = await pool.call(countedFailure, [dir, 1]).then(() => undefined, (e: unknown) => e);
    expect(error).to.be.instanceOf(RemoteError).and.include({ name: 'QuotaExceeded' });
    expect(count(dir, 1, 'start')).to.equal(1);
  });

  it('gives up after retries + 1 attempts and says how many were made', async function () {
    const pool = await startPool({ name: 'gives-up', backend: new ProcessBackend({ stdio: 'ignore' }), max: 1, shutdownTimeout: 500 });
    const dying = async (path: string) => {
      (await import('node:fs')).appendFileSync(path, 'x');
      process.kill(process.pid, 'SIGKILL');
    };
    const marker = join(dir, 'attempts');
    const error = await pool.call(dying, [marker], { retries: 2, timeout: 30_000 }).then(() => undefined, (e: unknown) => e);
    expect(error).to.be.instanceOf(RunnerDownError).and.include({ attempts: 3 });
    expect((error as Error).message).to.match(/\(gave up after 3 attempts\)$/);
    expect(readFileSync(marker, 'utf8')).to.equal('xxx');
  });

  it('retries a call whose runner could not boot, within its one deadline', async function () {
    const backend = new ScriptedBoots(new ProcessBackend({ stdio: 'ignore' }), (n) => n <= 3);
    const pool = await startPool({ name: 'boot-retry', backend, max: 1, retries: 2, timeout: 30_000, shutdownTimeout: 500 });
    expect(await pool.call(countedWork, [dir, 7, 1])).to.be.a('number');
    expect(backend.boots).to.equal(4);
    const noRetry = await startPool({ name: 'boot-no-retry', backend: new ProcessBackend({ command: [process.execPath, '-e', 'process.exit(1)'], stdio: 'ignore' }), max: 1, shutdownTimeout: 500 });
    const error = await noRetry.call(countedWork, [dir, 8, 1], { retries: 1, timeout: 30_000 }).then(() => undefined, (e: unknown) => e);
    expect(error).to.be.instanceOf(BootError).and.include({ attempts: 2 });
  });
});
