/**
 * Type tests: tsc compiles this file in `npm test` (pretest builds everything), and every
 * `@ts-expect-error` below must be an error, or the build fails. Nothing here runs: the cases
 * live in functions that are never called.
 */
import { expect } from 'chai';
import type { Ref } from 'nact';
import { moduleRef } from '../../src/flame/fn-ref.js';
import type { Pool } from '../../src/flame/pool.js';
import type { Wire } from '../../src/flame/wire-types.js';
import { isFlameError, type FlameErrorCode, type RunnerDownError } from '../../src/errors.js';

/** True when A and B are the same type (not merely assignable). */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function same<A, B>(proof: Equal<A, B>): Equal<A, B> {
  return proof;
}

const JOBS = new URL('../fixtures/pool-jobs.js', import.meta.url);

async function argumentCases(pool: Pool): Promise<void> {
  // A function with parameters needs its arguments, typed as its parameters.
  // @ts-expect-error the argument is missing (this would run as NaN)
  await pool.call((a: number) => a * 2);
  // @ts-expect-error a string is not a number
  await pool.call((a: number) => a * 2, ['2']);
  // @ts-expect-error one argument too many
  await pool.call((a: number) => a * 2, [1, 2]);
  const doubled: number = await pool.call((a: number) => a * 2, [2]);
  // Without parameters, or only optional ones, the arguments may be left out.
  await pool.call(() => 1);
  await pool.call((a?: number) => a ?? 0);
  await pool.call((a?: number) => a ?? 0, [1], { timeout: 1000 });

  // The same for cast.
  // @ts-expect-error the argument is missing
  pool.cast((path: string) => path);
  pool.cast((path: string) => path, ['/tmp/x']);

  // A typed moduleRef is checked like the function it names; an untyped one takes anything.
  const typed = moduleRef<(ms: number) => Promise<number>>(JOBS, 'slow');
  // @ts-expect-error the argument is missing
  await pool.call(typed);
  // @ts-expect-error a string is not a number
  await pool.call(typed, ['1']);
  const pid: number = await pool.call(typed, [10]);
  const untyped = moduleRef(JOBS, 'slow');
  await pool.call(untyped, [1, 'anything']);
  await pool.call(untyped);

  // placeChild: the factory's parameters after the parent ref.
  const factory = (parent: Ref<never>, start: number): Ref<string> => parent as unknown as Ref<string>;
  // @ts-expect-error the start argument is missing
  await pool.placeChild(factory);
  // @ts-expect-error a string is not a number
  await pool.placeChild(factory, ['1']);
  await pool.placeChild(factory, [1], { link: false });
  await pool.placeChild((parent: Ref<never>) => parent);
  // An explicit message type keeps the arguments loose (no partial inference in TypeScript).
  const ref: Ref<{ type: 'inc' }> = await pool.placeChild<{ type: 'inc' }>(moduleRef(JOBS, 'markedCounter'), ['/tmp/m', 1]);
  void [doubled, pid, ref];
}

class Point {
  constructor(readonly x: number, readonly y: number) {}
  norm(): number {
    return Math.hypot(this.x, this.y);
  }
}

async function resultCases(pool: Pool): Promise<void> {
  // A class instance arrives as a plain object of its fields: no methods.
  const point = await pool.call(() => ({ x: 1, y: 2 }) as unknown as Point);
  same<typeof point, { x: number; y: number }>(true);
  // @ts-expect-error methods do not survive the wire
  point.norm();
  // toJSON wins: a URL arrives as a string.
  same<Awaited<ReturnType<typeof pool.call<() => URL>>>, string>(true);
  // Dates, Maps, Sets, bigints and Buffers arrive as themselves.
  same<Wire<{ at: Date; m: Map<string, Set<bigint>>; b: Buffer }>, { at: Date; m: Map<string, Set<bigint>>; b: Buffer }>(true);
  // Functions cannot be sent; keys holding them (methods) are dropped from objects.
  same<Wire<() => void>, never>(true);
  same<Wire<{ a: number; f(): void }>, { a: number }>(true);
  same<Wire<[number, Date]>, [number, Date]>(true);
  same<Wire<Error>, Error>(true);
}

function errorCases(error: unknown): void {
  // @ts-expect-error not a code of this library
  isFlameError(error, 'FLAME_ERR_TYPO');
  if (isFlameError(error, 'FLAME_ERR_RUNNER_DOWN')) {
    same<typeof error, RunnerDownError>(true);
    const runner: string | undefined = error.runner;
    // @ts-expect-error RunnerDownError has no timeout
    void error.timeout;
    void runner;
  }
  if (isFlameError(error, 'FLAME_ERR_CALL_TIMEOUT')) {
    const timeout: number | undefined = error.timeout;
    void timeout;
  }
  if (isFlameError(error)) {
    const code: string = error.code;
    void code;
  }
  const codes: FlameErrorCode[] = ['FLAME_ERR_BOOT', 'FLAME_ERR_REMOTE'];
  // @ts-expect-error codes are a closed union
  const wrong: FlameErrorCode = 'FLAME_ERR_NOPE';
  void [codes, wrong];
}

describe('Public types', function () {
  it('are checked by tsc when the tests are built (argument, result and error-code cases)', function () {
    expect([argumentCases, resultCases, errorCases].every((f) => typeof f === 'function')).to.equal(true);
  });
});
