/**
 * Placement: which runner takes a call. A free slot on the least-loaded ready runner, else a wait
 * in FIFO order while the pool grows. This is plain synchronous code, not an actor: it is on every
 * call's path, and nact handles one message per turn of the event loop, so a placement actor
 * would add a loop turn (and a queue) to every call. See docs/design.md.
 */
import { AbortError, CheckoutTimeoutError, PoolOverloadedError } from '../errors.js';
import { onAbort } from '../abort.js';
import type { RunnerHandle } from './runner-handle.js';
import { publish, queueOverloadChannel } from '../observability/diagnostics.js';

interface Waiter {
  resolve(runner: RunnerHandle): void;
  reject(error: Error): void;
  settled: boolean;
}

/** What placement needs from the rest of the pool. */
export interface PlacementContext {
  readonly name: string;
  readonly max: number;
  readonly maxConcurrency: number;
  readonly maxQueue: number;
  /** Every runner of the pool (placement only reads them). */
  runners(): Iterable<RunnerHandle>;
  /** Runners that exist, draining ones included: what `max` bounds. */
  existingCount(): number;
  /** A runner was taken (single-use runners drain at once). */
  taken(runner: RunnerHandle): void;
  /** Callers wait: boot runners if they need more slots than are coming. */
  grow(): void;
}

export class Placement {
  readonly #c: PlacementContext;
  #waiters: Waiter[] = [];
  #waiting = 0;

  constructor(context: PlacementContext) {
    this.#c = context;
  }

  /** Callers waiting for a slot. */
  get waiting(): number {
    return this.#waiting;
  }

  /**
   * Takes a free slot at once (synchronously, no promise) or queues the caller until one frees,
   * its deadline passes, or its signal aborts.
   */
  checkout(deadline: number, signal: AbortSignal | undefined): RunnerHandle | Promise<RunnerHandle> {
    if (signal?.aborted) return Promise.reject(new AbortError('aborted before a runner was assigned', { cause: signal.reason }));
    const runner = this.pick();
    if (runner) return this.#take(runner);
    if (this.#waiting >= this.#c.maxQueue) {
      publish(queueOverloadChannel, () => ({ pool: this.#c.name, queued: this.#waiting, maxQueue: this.#c.maxQueue }));
      return Promise.reject(new PoolOverloadedError(`pool ${this.#c.name} has ${this.#waiting} callers waiting (maxQueue ${this.#c.maxQueue}); try again later`));
    }
    return new Promise<RunnerHandle>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      let unsubscribe: (() => void) | undefined;
      const waiter: Waiter = {
        settled: false,
        resolve: (r) => finish(() => resolve(r)),
        reject: (e) => finish(() => reject(e)),
      };
      const finish = (then: () => void) => {
        if (waiter.settled) return;
        waiter.settled = true;
        this.#waiting--;
        if (timer) clearTimeout(timer);
        unsubscribe?.();
        then();
      };
      const wait = deadline - performance.now();
      if (wait !== Infinity) {
        timer = setTimeout(() => waiter.reject(this.#checkoutTimeout(wait)), Math.max(0, wait));
      }
      if (signal) unsubscribe = onAbort(signal, () => waiter.reject(new AbortError('aborted while waiting for a runner', { cause: signal.reason })));
      this.#waiters.push(waiter);
      this.#waiting++;
      this.#c.grow();
    });
  }

  /** A slot of `runner` is free again: the longest-waiting caller may take it. */
  checkin(runner: RunnerHandle): void {
    if (runner.load > 0) runner.load--;
    if (runner.load === 0) runner.idleSince = performance.now();
    this.serveWaiters();
  }

  /** Gives free slots to waiting callers, oldest first. */
  serveWaiters(): void {
    while (this.#waiters.length > 0) {
      const waiter = this.#waiters[0]!;
      if (waiter.settled) {
        this.#waiters.shift();
        continue;
      }
      const runner = this.pick();
      if (!runner) break;
      this.#waiters.shift();
      waiter.resolve(this.#take(runner));
    }
    // Settled waiters (timed out, aborted) are dropped lazily; compact when they dominate.
    if (this.#waiters.length > 64 && this.#waiting < this.#waiters.length / 2) {
      this.#waiters = this.#waiters.filter((w) => !w.settled);
    }
  }

  /** Rejects every waiting caller with `error`. */
  failWaiters(error: Error): void {
    for (const waiter of this.#waiters.splice(0)) waiter.reject(error);
  }

  /** The least-loaded ready runner with a free slot (ties: the oldest), or undefined. */
  pick(): RunnerHandle | undefined {
    let best: RunnerHandle | undefined;
    for (const r of this.#c.runners()) {
      if (!r.placeable || r.load >= this.#c.maxConcurrency) continue;
      if (!best || r.load < best.load || (r.load === best.load && r.seq < best.seq)) best = r;
    }
    return best;
  }

  #take(runner: RunnerHandle): RunnerHandle {
    runner.load++;
    this.#c.taken(runner);
    return runner;
  }

  #checkoutTimeout(waited: number): Error {
    const live = this.#c.existingCount();
    const atMax = live >= this.#c.max;
    const { name, max, maxConcurrency } = this.#c;
    return new CheckoutTimeoutError(
      atMax
        ? `no runner had a free slot within ${Math.round(waited)} ms: pool ${name} is at max (${max} runners x ${maxConcurrency} slots, all busy); raise max or maxConcurrency, or the timeout`
        : `no runner became ready within ${Math.round(waited)} ms (pool ${name} has ${live} of max ${max} runners, some still booting); raise the call's timeout above the boot time`,
      { atMax, max, queued: this.#waiting },
    );
  }
}
