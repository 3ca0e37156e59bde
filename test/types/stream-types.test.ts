/**
 * Type tests of `pool.stream`, `pool.track` and `placeChild`'s `restart`: tsc compiles this file
 * when the tests are built, and every `@ts-expect-error` below must be an error. Nothing here
 * runs: the cases live in functions that are never called.
 */
import { expect } from 'chai';
import type { Readable } from 'node:stream';
import { moduleRef } from '../../src/flame/fn-ref.js';
import type { Pool } from '../../src/flame/pool.js';
import type { Trackable } from '../../src/flame/tracked.js';
import type * as Jobs from '../fixtures/stream-jobs.js';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function same<A, B>(proof: Equal<A, B>): Equal<A, B> {
  return proof;
}

const JOBS = new URL('../fixtures/stream-jobs.js', import.meta.url);

async function streamCases(pool: Pool): Promise<void> {
  // Items are what the generator yields, after the wire.
  for await (const n of pool.stream(moduleRef<typeof Jobs.count>(JOBS, 'count'), [3])) same<typeof n, number>(true);
  for await (const p of pool.stream(async function* () {
    yield { at: new URL('http://x'), n: 1 };
  })) same<typeof p, { at: string; n: number }>(true);
  // A Readable's chunks are unknown; an array's elements keep their type.
  for await (const c of pool.stream((): Readable => null as unknown as Readable)) same<typeof c, unknown>(true);
  for await (const s of pool.stream(() => ['a', 'b'])) same<typeof s, string>(true);
  // @ts-expect-error the argument is missing
  pool.stream(moduleRef<typeof Jobs.count>(JOBS, 'count'));
  // @ts-expect-error highWaterMark is a number
  pool.stream(() => [1], [], { highWaterMark: '8' });
}

async function trackCases(pool: Pool): Promise<void> {
  const file = await pool.track(moduleRef<typeof Jobs.tempResource>(JOBS, 'tempResource'), ['/tmp/x']);
  same<typeof file.value, { path: string; pid: number }>(true);
  const plain = await pool.track((n: number) => n * 2, [1]);
  same<typeof plain.value, number>(true);
  const made = await pool.track((): Trackable<Date> => ({ value: new Date(), release() {} }));
  same<typeof made.value, Date>(true);
  await using held = await pool.track(() => 1);
  void held;
}

async function restartCases(pool: Pool): Promise<void> {
  await pool.placeChild(moduleRef(JOBS, 'counter'), [], { restart: { maxRestarts: 2, withinMs: 1000, onGiveUp: (e) => void e.restarts } });
  // @ts-expect-error maxRestarts is a number
  await pool.placeChild(moduleRef(JOBS, 'counter'), [], { restart: { maxRestarts: '2' } });
}

describe('Public types of streams, tracked resources and restartable actors', function () {
  it('are checked by tsc when the tests are built', function () {
    expect([streamCases, trackCases, restartCases].every((f) => typeof f === 'function')).to.equal(true);
  });
});
