import { expect } from 'chai';
import { resolvePoolOptions, resolveCallOptions, type PoolOptions } from '../../src/flame/options.js';
import { Pool } from '../../src/flame/pool.js';
import { ProcessBackend } from '../../src/backends/process/backend.js';
import { InvalidOptionError, PoolStoppedError } from '../../src/errors.js';
import { startPool } from '../helpers/pools.js';

function rejects(options: unknown, pattern: RegExp): void {
  expect(() => resolvePoolOptions(options as PoolOptions)).to.throw(InvalidOptionError, pattern);
}

function captured(run: () => unknown): InvalidOptionError {
  try {
    run();
  } catch (error) {
    expect(error).to.be.instanceOf(InvalidOptionError);
    return error as InvalidOptionError;
  }
  return expect.fail('no InvalidOptionError thrown');
}

describe('Pool options', function () {
  it('applies FLAME\'s defaults', function () {
    const o = resolvePoolOptions({ max: 2 });
    expect(o).to.include({
      name: 'flame-pool', min: 0, max: 2, maxConcurrency: 100, idleShutdownAfter: 30_000, minIdleShutdownAfter: Infinity,
      bootTimeout: 30_000, timeout: 30_000, shutdownTimeout: 30_000, failsafeTimeout: 20_000, singleUse: false, maxQueue: Infinity, log: false,
      warmUp: true,
    });
  });

  it('names every invalid option and what it accepts', function () {
    rejects({}, /option "max" is required: the most runners the pool may run at once \(an integer >= 1\)/);
    rejects({ max: 0 }, /"max" must be an integer >= 1 \(got 0\)/);
    rejects({ max: 1.5 }, /"max" must be an integer >= 1 \(got 1.5\)/);
    rejects({ max: 2, min: 3 }, /"min" must be an integer from 0 to max \(2\) \(got 3\)/);
    rejects({ max: 2, min: -1 }, /"min" must be an integer >= 0/);
    rejects({ max: 2, maxConcurrency: 0 }, /"maxConcurrency" must be an integer >= 1/);
    rejects({ max: 2, idleShutdownAfter: -5 }, /"idleShutdownAfter" must be a number of milliseconds >= 0 or Infinity/);
    rejects({ max: 2, minIdleShutdownAfter: 'soon' }, /"minIdleShutdownAfter" must be a number of milliseconds >= 0 or Infinity \(got "soon"\)/);
    rejects({ max: 2, bootTimeout: 0 }, /"bootTimeout" must be a number of milliseconds >= 1/);
    rejects({ max: 2, bootTimeout: Infinity }, /"bootTimeout" must be a number of milliseconds >= 1 \(got null\)|"bootTimeout" must be a number of milliseconds >= 1/);
    rejects({ max: 2, timeout: -1 }, /"timeout" must be a number of milliseconds >= 1 or Infinity/);
    rejects({ max: 2, shutdownTimeout: NaN }, /"shutdownTimeout" must be a number of milliseconds >= 0/);
    rejects({ max: 2, failsafeTimeout: 0 }, /"failsafeTimeout" must be a number of milliseconds >= 1/);
    rejects({ max: 2, singleUse: 'yes' }, /"singleUse" must be true or false \(got "yes"\)/);
    rejects({ max: 2, warmUp: 1 }, /"warmUp" must be true or false \(got 1\)/);
    rejects({ max: 2, maxQueue: -1 }, /"maxQueue" must be an integer >= 0/);
    rejects({ max: 2, retries: -1 }, /"retries" must be an integer from 0 to 100 \(got -1\)/);
    rejects({ max: 2, retries: 1.5 }, /"retries" must be an integer from 0 to 100/);
    rejects({ max: 2, onGrowStart: 'x' }, /"onGrowStart" must be a function/);
    rejects({ max: 2, onGrowEnd: 1 }, /"onGrowEnd" must be a function/);
    rejects({ max: 2, onShrink: {} }, /"onShrink" must be a function/);
    rejects({ max: 2, log: 'loud' }, /"log" must be one of false, "error", "warn", "info", "debug" \(got "loud"\)/);
    rejects({ max: 2, logSink: 'stderr' }, /"logSink" must be a function/);
    rejects({ max: 2, name: 'Bad Name' }, /"name" must be a lowercase name of letters, digits and "-"/);
    rejects({ max: 2, backend: {} }, /"backend" must be a Backend \(new ProcessBackend\(\), new LocalBackend\(\)/);
    rejects({ max: 2, node: {} }, /"node" must be a ClusterNode from startNode\(\)/);
    rejects({ max: 2, maxConcurency: 3 }, /unknown option "maxConcurency"; allowed options are: .*maxConcurrency/);
    rejects('fast', /options must be an object \(got "fast"\)/);
  });

  it('suggests the option a near-miss name was meant to be, for every options object', function () {
    const typo = (() => resolvePoolOptions({ max: 2, maxConcurency: 3 } as never)) as () => never;
    expect(typo).to.throw(InvalidOptionError, /unknown option "maxConcurency"; allowed options are: .*\. Did you mean "maxConcurrency"\?$/);
    const error = captured(typo);
    expect(error).to.include({ option: 'maxConcurency', suggestion: 'maxConcurrency' });
    expect(captured(() => resolvePoolOptions({ max: 2, IdleShutdownAfter: 1 } as never))).to.include({ suggestion: 'idleShutdownAfter' });
    expect(captured(() => resolvePoolOptions({ max: 2, bootTimout: 1 } as never))).to.include({ suggestion: 'bootTimeout' });
    expect(captured(() => resolveCallOptions('pool.call', { timout: 5 } as never, 1000))).to.include({ suggestion: 'timeout' });
    expect(captured(() => new ProcessBackend({ stdoi: 'ignore' } as never)).message).to.match(/Did you mean "stdio"\?/);
    const unrelated = captured(() => resolvePoolOptions({ max: 2, colour: 'red' } as never));
    expect(unrelated.suggestion).to.equal(undefined);
    expect(unrelated.message).to.not.match(/Did you mean/);
  });

  it('refuses call and cast arguments that are not an array, and a cast after stop, at once', async function () {
    const pool = await startPool({ name: 'bad-args', backend: new ProcessBackend({ stdio: 'ignore' }), max: 1 });
    const error = await pool.call((x: number) => x, 5 as never).then(() => undefined, (e: unknown) => e);
    expect(error).to.be.instanceOf(InvalidOptionError).and.include({ option: 'args' });
    expect((error as Error).message).to.match(/pool\.call: the arguments must be an array, e\.g\. pool\.call\(fn, \[5\]\)/);
    expect(() => pool.cast((x: string) => x, 'a' as never)).to.throw(InvalidOptionError, /pool\.cast: the arguments must be an array/);
    await pool.placeChild((p: unknown) => p, {} as never).then(() => expect.fail('placeChild accepted an object as arguments'), (e: unknown) => expect(e).to.be.instanceOf(InvalidOptionError));
    expect(pool.status().runners).to.have.length(0);
    await pool.stop();
    expect(() => pool.cast(() => 1)).to.throw(PoolStoppedError, /pool bad-args is stopped and takes no new work/);
  });

  it('validates per-call options', function () {
    expect(() => resolveCallOptions('pool.call', { timeout: 0 }, 1000)).to.throw(InvalidOptionError, /pool.call: option "timeout" must be a number of milliseconds >= 1 or Infinity/);
    expect(() => resolveCallOptions('pool.call', { signal: 'stop' } as never, 1000)).to.throw(InvalidOptionError, /"signal" must be an AbortSignal/);
    expect(() => resolveCallOptions('pool.call', { link: false } as never, 1000)).to.throw(InvalidOptionError, /unknown option "link"/);
    expect(resolveCallOptions('pool.placeChild', { link: false }, 1000, true)).to.include({ link: false, timeout: 1000 });
    expect(resolveCallOptions('pool.call', {}, 1000, false, 2)).to.include({ retries: 2 });
    expect(resolveCallOptions('pool.call', { retries: 0 }, 1000, false, 2)).to.include({ retries: 0 });
    expect(() => resolveCallOptions('pool.call', { retries: 'twice' } as never, 1000)).to.throw(InvalidOptionError, /"retries" must be an integer from 0 to 100/);
    expect(() => resolveCallOptions('pool.placeChild', { retries: 1 } as never, 1000, true)).to.throw(InvalidOptionError, /unknown option "retries"/);
    expect(resolvePoolOptions({ max: 1 }).retries).to.equal(0);
  });

  it('validates ProcessBackend options', function () {
    expect(() => new ProcessBackend({ command: [] })).to.throw(InvalidOptionError, /"command" must be a non-empty array of strings/);
    expect(() => new ProcessBackend({ stdio: 'pipe' as never })).to.throw(InvalidOptionError, /"stdio" must be one of "inherit", "ignore"/);
  });

  it('refuses a second pool with the same name on one node', async function () {
    await startPool({ name: 'twice', backend: new ProcessBackend(), max: 1 });
    const error = await Pool.start({ name: 'twice', backend: new ProcessBackend(), max: 1 }).then(() => undefined, (e: unknown) => e);
    expect(error).to.be.instanceOf(InvalidOptionError);
    expect((error as Error).message).to.match(/a pool named "twice" is already running/);
  });
});
