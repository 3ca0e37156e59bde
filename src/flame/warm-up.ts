/**
 * The warm-up of a pool's first runners: real calls over the real link before `Pool.start`
 * resolves.
 *
 * A fresh process runs a call's path in V8's interpreter until the JIT has seen it often enough:
 * the first thousands of calls of a fresh pool ran at a third of the steady rate, because both
 * processes (the parent's pool, request, link and codec code; the runner's decoding, serving and
 * replying) compiled their hot paths while the user's first burst ran, and on a small machine the
 * compiler threads compete with both for the cores. Encoding and decoding call-shaped frames
 * locally warmed only part of the parent and taught the JIT shapes that real traffic does not
 * have (it deoptimised again on the first real frames); nothing short of real calls warms the
 * runner. So the pool makes calls of a trivial closure through `pool.call` itself, pipelined as
 * real load is, and stops when a slice of them runs no faster than the best slice so far (the hot
 * paths are compiled), at a budget of time or calls, or at the first failure.
 *
 * It is a driver of calls and nothing else: which calls, and that they stay invisible to the
 * pool's user, is the pool's business (pool.ts).
 */

/** How far a warm-up may go, and when it counts as done. */
export interface WarmUpBudget {
  /** Wall-clock time at most, in ms: no call starts after it. */
  readonly maxMs: number;
  /** Calls at most per runner. */
  readonly maxCalls: number;
  /** Calls per runner before its rate is judged at all (the first slices are all compiling). */
  readonly minCalls: number;
  /** Calls per runner in one measured slice. */
  readonly sliceCalls: number;
  /** Slices in a row that are no faster than the best one so far: done. */
  readonly patience: number;
}

/**
 * Measured on a 2-core machine with one runner process: the rate stops improving after 7,000 to
 * 13,000 calls (110-160 ms on a quiet machine); interleaved against 150 ms and 600 ms budgets,
 * 250 ms gave the fastest first burst (a shorter one left it half warm, a longer one was no better).
 */
export const WARM_UP_BUDGET: WarmUpBudget = Object.freeze({ maxMs: 250, maxCalls: 20_000, minCalls: 3_000, sliceCalls: 1_000, patience: 3 });

/** Why a warm-up ended. */
export type WarmUpEnd = 'plateau' | 'time' | 'calls' | 'failed';

export interface WarmUpResult {
  /** Calls that completed (successfully). */
  calls: number;
  /** Wall-clock time from the first call to the last one's settlement. */
  ms: number;
  ended: WarmUpEnd;
  /** The first failure, when it ended on one. */
  error: unknown;
}

/**
 * Keeps `inFlight` calls (`call(i)`, i counting from 0) outstanding until the budget says stop
 * (with `runners` runners sharing them, budgets per runner are multiplied by it), then waits for
 * the calls in flight. Resolves once every call it made has settled; never rejects. A call that
 * throws or rejects ends it: no call starts after a failure.
 */
export function warmUp(call: (i: number) => Promise<unknown>, inFlight: number, runners = 1, budget: WarmUpBudget = WARM_UP_BUDGET): Promise<WarmUpResult> {
  const maxCalls = budget.maxCalls * runners;
  const minCalls = budget.minCalls * runners;
  const slice = Math.max(1, budget.sliceCalls * runners);
  const start = performance.now();
  const stopAt = start + budget.maxMs;
  let started = 0;
  let done = 0;
  let outstanding = 0;
  let ended: WarmUpEnd | undefined;
  let error: unknown;
  let sliceStart = start;
  let best = 0;
  let flat = 0;

  return new Promise((resolve) => {
    const finish = (): void => {
      if (outstanding === 0) resolve({ calls: done, ms: performance.now() - start, ended: ended ?? 'calls', error });
    };
    const judge = (now: number): void => {
      if (done % slice !== 0) return;
      const rate = slice / Math.max(now - sliceStart, 1e-3);
      sliceStart = now;
      if (rate > best) {
        best = rate;
        flat = 0;
      } else if (done >= minCalls && ++flat >= budget.patience) {
        ended ??= 'plateau';
      }
    };
    const next = (): void => {
      if (ended === undefined) {
        if (started >= maxCalls) ended = 'calls';
        else if (performance.now() >= stopAt) ended = 'time';
      }
      if (ended !== undefined) return finish();
      const i = started++;
      outstanding++;
      let promise: Promise<unknown>;
      try {
        promise = call(i);
      } catch (failure) {
        promise = Promise.reject(failure);
      }
      promise.then(succeeded, failed);
    };
    const succeeded = (): void => {
      outstanding--;
      done++;
      judge(performance.now());
      next();
    };
    const failed = (failure: unknown): void => {
      outstanding--;
      if (ended !== 'failed') {
        ended = 'failed';
        error = failure;
      }
      finish();
    };
    for (let lane = 0; lane < inFlight && ended === undefined; lane++) next();
    if (inFlight <= 0) finish();
  });
}
