/**
 * The pool's `maxPayload`: carried to runners in their parent token, applied on both sides of
 * their link, and named by the PayloadTooLargeError a too-large message gets.
 */
import { expect } from 'chai';
import { ProcessBackend } from '../../src/backends/process/backend.js';
import { InvalidOptionError, ParentTokenError, PayloadTooLargeError } from '../../src/errors.js';
import { decodeParent, encodeParent } from '../../src/flame/parent.js';
import { startPool } from '../helpers/pools.js';

const MiB = 1024 * 1024;

describe('Pool maxPayload', function () {
  it('refuses a call whose arguments exceed it with PayloadTooLargeError naming the option', async function () {
    const pool = await startPool({ name: 'small-payload', max: 1, maxPayload: 64 * 1024, backend: new ProcessBackend({ stdio: 'ignore' }) });
    expect(await pool.call((s: string) => s.length, ['x'.repeat(1000)])).to.equal(1000);
    const error = await pool.call((s: string) => s.length, ['x'.repeat(100_000)]).then(() => undefined, (e: unknown) => e);
    expect(error).to.be.instanceOf(PayloadTooLargeError);
    expect((error as Error).message).to.match(/exceeds the pool's maxPayload \(65536 bytes\).*Pool\.start\(\{ maxPayload \}\)/);
    expect((error as PayloadTooLargeError).details).to.include({ option: 'maxPayload' });
  });

  it('fails a call whose result exceeds it at once, with PayloadTooLargeError naming the option', async function () {
    const pool = await startPool({ name: 'small-result', max: 1, maxPayload: 64 * 1024, timeout: 20_000, backend: new ProcessBackend({ stdio: 'ignore' }) });
    const started = performance.now();
    const error = await pool.call((n: number) => 'z'.repeat(n), [100_000]).then(() => undefined, (e: unknown) => e);
    expect(error).to.be.instanceOf(PayloadTooLargeError);
    expect((error as Error).message).to.match(/maxPayload \(65536 bytes\).*Pool\.start\(\{ maxPayload \}\)/);
    expect(performance.now() - started).to.be.below(5000);
    expect(await pool.call(() => 'still serving')).to.equal('still serving');
  });

  it('carries a larger limit to its runners: 20 MB each way', async function () {
    const pool = await startPool({ name: 'large-payload', max: 1, maxPayload: 32 * MiB, timeout: 60_000, backend: new ProcessBackend({ stdio: 'ignore' }) });
    expect(await pool.call((s: string) => s.length, ['x'.repeat(20_000_000)])).to.equal(20_000_000);
    expect((await pool.call((n: number) => 'y'.repeat(n), [20_000_000])).length).to.equal(20_000_000);
  });

  it('refuses a pool asking more than the shared parent node was started with', async function () {
    await startPool({ name: 'first-payload', max: 1, backend: new ProcessBackend({ stdio: 'ignore' }) });
    const error = await startPool({ name: 'bigger-payload', max: 1, maxPayload: 64 * MiB }).then(() => undefined, (e: unknown) => e);
    expect(error).to.be.instanceOf(InvalidOptionError).with.property('message').that.matches(/"maxPayload" \(67108864 bytes\) is larger than the shared parent node's \(16777216 bytes/);
  });

  it('travels in the parent token, validated', function () {
    const info = {
      parent: 'p@127.0.0.1:1', runner: 'r-1', pool: 'p', backend: 'process',
      idleShutdownAfter: 1, shutdownTimeout: 1, failsafeTimeout: 1, bootTimeout: 1, singleUse: false, log: false as const,
    };
    expect(decodeParent(encodeParent({ ...info, maxPayload: 32 * MiB })).maxPayload).to.equal(32 * MiB);
    expect(decodeParent(encodeParent(info)).maxPayload).to.equal(undefined);
    expect(() => decodeParent(encodeParent({ ...info, maxPayload: 5 }))).to.throw(ParentTokenError, /"maxPayload"/);
  });
});
