/**
 * One call's unhandled error does not take down the other calls on its runner: it is reported
 * (runner log, pool `runnerError` event) and fails the call it came from where that is known.
 */
import { expect } from 'chai';
import { ProcessBackend } from '../../src/backends/process/backend.js';
import { RunnerDownError } from '../../src/errors.js';
import type { RunnerErrorInfo } from '../../src/flame/pool.js';
import { moduleRef } from '../../src/flame/fn-ref.js';
import { nextEvent, settlesWithin } from '../helpers/wait.js';
import { startPool } from '../helpers/pools.js';
import type * as Jobs from '../fixtures/pool-jobs.js';

const JOBS = new URL('../fixtures/pool-jobs.js', import.meta.url);
const slow = moduleRef<typeof Jobs.slow>(JOBS, 'slow');

describe('Runner faults (errors shipped work leaves unhandled)', function () {
  const start = (name: string) => startPool({ name, backend: new ProcessBackend({ stdio: 'ignore' }), max: 1, maxConcurrency: 8, shutdownTimeout: 1000 });

  it('fails only the call whose floating rejection it was; the 5 other calls on the runner finish', async function () {
    const pool = await start('floating');
    const runnerPid = await pool.call(() => process.pid);
    const reported = nextEvent<[RunnerErrorInfo]>(pool, 'runnerError', 15_000);
    const others = Array.from({ length: 5 }, () => pool.call(slow, [800]));
    const forgotAwait = pool.call(async () => {
      // The classic bug: a promise nobody awaits rejects while the call is still running.
      void Promise.reject(new TypeError('forgot an await'));
      await new Promise((resolve) => setTimeout(resolve, 2000));
      return 'finished';
    });
    const { error } = await settlesWithin(forgotAwait, 10_000, 'the faulty call');
    expect(error).to.be.instanceOf(TypeError).with.property('message', 'forgot an await');
    expect(await Promise.all(others)).to.deep.equal(Array(5).fill(runnerPid));
    const [info] = await reported;
    expect(info).to.include({ kind: 'unhandledRejection', name: 'TypeError', message: 'forgot an await', failedCall: true });
    expect(info.origin).to.match(/^flame:\/\/fn\/[0-9a-f]+\.js$/);
    expect(info.stack).to.include(info.origin!);
    expect(await pool.call(() => process.pid)).to.equal(runnerPid);
  });

  it('survives an uncaught exception thrown by a timer after its call returned, reporting where it came from', async function () {
    const pool = await start('late-throw');
    const runnerPid = await pool.call(() => process.pid);
    const reported = nextEvent<[RunnerErrorInfo]>(pool, 'runnerError', 15_000);
    const other = pool.call(slow, [500]);
    expect(await pool.call(() => {
      setTimeout(() => {
        throw new RangeError('late failure');
      }, 20);
      return 'returned';
    })).to.equal('returned');
    const [info] = await reported;
    expect(info).to.include({ kind: 'uncaughtException', name: 'RangeError', message: 'late failure', failedCall: false, runner: pool.status().runners[0]!.id });
    expect(info.origin).to.match(/^flame:\/\/fn\//);
    expect(await other).to.equal(runnerPid);
    expect(await pool.call(() => process.pid)).to.equal(runnerPid);
  });

  it('reports a rejection with a non-Error value', async function () {
    const pool = await start('non-error');
    const reported = nextEvent<[RunnerErrorInfo]>(pool, 'runnerError', 15_000);
    await pool.call(() => {
      setTimeout(() => void Promise.reject('plain string'), 10);
      return 1;
    });
    const [info] = await reported;
    expect(info).to.include({ kind: 'unhandledRejection', name: 'string', message: 'plain string', failedCall: false });
  });

  it('names the real error of a runner that does die in RunnerDownError, not the tail of its stack', async function () {
    const pool = await start('dies');
    await pool.call(() => 1);
    const { error } = await settlesWithin(pool.call(() => {
      // A death the runner cannot prevent: its handlers are gone, then an error escapes.
      process.removeAllListeners('uncaughtException');
      process.removeAllListeners('unhandledRejection');
      setTimeout(() => {
        throw new SyntaxError('the real reason');
      }, 10);
      return new Promise(() => {});
    }), 15_000, 'the call on the dying runner');
    expect(error).to.be.instanceOf(RunnerDownError);
    expect((error as Error).message).to.match(/SyntaxError: the real reason/, (error as Error).message);
    expect((error as Error).message).not.to.match(/Node\.js v\d|processTicksAndRejections/);
  });
});
