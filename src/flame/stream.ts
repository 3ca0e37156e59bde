/**
 * `pool.stream`: the caller's side of a stream run on a runner. Items arrive in order, pulled in
 * batches by credit: the items the caller holds unconsumed plus those its pulls in flight ask for
 * never exceed `highWaterMark`, and a new pull goes out as soon as half of it is free, so the
 * next batch is on its way while the caller reads the one it has (double buffering). The runner
 * runs the generator ahead by at most as many (see src/runner/stream-service.ts), so a caller
 * that stops reading pauses the generator.
 *
 * The stream holds one slot of its runner until it ends. It ends when the generator returns,
 * throws (the next `next()` rejects with that error, after the items before it), the runner dies
 * (RunnerDownError), or the caller cancels: `break`/`return()`/`await using`, the deadline
 * (CallTimeoutError) or the signal (AbortError); cancelling runs the generator's `finally` on the
 * runner, and `return()` resolves once it ran. A stream handle that is garbage-collected before
 * it ended is cancelled too.
 *
 * The state lives in a {@link StreamCore} that timers, monitors and requests refer to; the
 * public {@link RemoteStream} is a thin wrapper around it, so that nothing but the caller keeps
 * the wrapper reachable and a FinalizationRegistry can tell when the caller dropped it.
 */
import { onAbort } from '../abort.js';
import type { ReplyReceiver } from '../cluster/node.js';
import { AbortError, CallTimeoutError, NodeDownError, ProtocolError } from '../errors.js';
import type { CallTrace } from '../observability/diagnostics.js';
import type { FnArgs, FnResult, ShippedFunction } from './fn-ref.js';
import { nextResourceId, type Lease, type LeaseSource } from './lease.js';
import { STREAM_SERVICE, type StreamBatch, type StreamOpenRequest } from './stream-protocol.js';
import type { Wire } from './wire-types.js';

/** How long `return()` waits for the runner to confirm the generator's `finally` ran. */
const CANCEL_WAIT_MS = 15_000;

/** Options of `pool.stream`. */
export interface StreamOptions {
  /** Deadline of the whole stream (waiting for a slot, then until its end), in ms. Default: the pool's `timeout`. */
  timeout?: number;
  /** Cancels the stream (waiting or running); the remote generator's `finally` runs. */
  signal?: AbortSignal;
  /** Items buffered on each side (caller and runner) before the generator pauses. Default 64. */
  highWaterMark?: number;
}

/** What follows the function in `pool.stream`: its arguments (typed as its parameters) and options. */
export type StreamRest<F> = [] extends FnArgs<F>
  ? [args?: FnArgs<F>, options?: StreamOptions]
  : [args: FnArgs<F>, options?: StreamOptions];

type ItemOf<R> = R extends AsyncIterable<infer T> ? T : R extends Iterable<infer T> ? T : unknown;
/** The items of `pool.stream(fn)` as they arrive: what `fn`'s iterable yields, after the wire (`unknown` for a Readable). */
export type StreamItem<F> = 0 extends 1 & ItemOf<FnResult<F>> ? unknown : Wire<ItemOf<FnResult<F>>>;

type State = 'opening' | 'open' | 'ended' | 'failed' | 'cancelled';

interface Waiter {
  resolve(result: IteratorResult<unknown>): void;
  reject(error: unknown): void;
}

/**
 * One open or pull in flight: the credit it asked for and, once its reply came, that reply.
 * Replies are taken in the order the pulls went out, whatever order they settle in.
 */
class Pull implements ReplyReceiver {
  readonly max: number;
  readonly #onSettled: () => void;
  settledAs: { ok: boolean; value: unknown } | undefined;

  constructor(max: number, onSettled: () => void) {
    this.max = max;
    this.#onSettled = onSettled;
  }

  settled(ok: boolean, value: unknown): void {
    this.settledAs = { ok, value };
    this.#onSettled();
  }
}

/**
 * A new pull goes out once this share of the window is free: half, so up to two pulls are in
 * flight. Measured with highWaterMark 64 on two loaded cores: halves beat quarters and eighths
 * (each pull and each batch is a socket write, which costs more than the items it carries) and
 * came within a tenth of one whole-window pull at a time, which leaves the reader idle for a
 * round trip per window on a slower link.
 */
const PULL_SHARE = 2;

export interface StreamStart {
  source: LeaseSource;
  shipped: ShippedFunction;
  args: unknown[];
  timeout: number;
  signal: AbortSignal | undefined;
  highWaterMark: number;
  /** Its `flame-actors:call` trace, when someone listens: settled when the stream ends. */
  trace?: CallTrace | undefined;
}

/** The state of one stream, owned here; moved only by the methods below. */
class StreamCore {
  readonly #s: StreamStart;
  readonly #id = nextResourceId();
  readonly #deadline: number;
  readonly #controller = new AbortController();
  #state: State = 'opening';
  #lease: Lease | undefined;
  #items: unknown[] = [];
  #head = 0;
  #waiters: Waiter[] = [];
  /** Opens and pulls in flight, oldest first, and the items they ask for in all. */
  #pulls: Pull[] = [];
  #credit = 0;
  /** A pull failed: what its later siblings answer is moot. */
  #pullFailed = false;
  readonly #pullAt: number;
  #error: Error | undefined;
  #errorDelivered = false;
  #timer: NodeJS.Timeout | undefined;
  #unmonitor: (() => void) | undefined;
  #unsubscribe: (() => void) | undefined;
  #closed: Promise<void> | undefined;
  #trace: CallTrace | undefined;
  readonly #startedAt: number;
  #leasedAt = 0;

  constructor(start: StreamStart) {
    this.#s = start;
    this.#trace = start.trace;
    this.#startedAt = performance.now();
    this.#deadline = this.#startedAt + start.timeout;
    this.#pullAt = Math.max(1, Math.floor(start.highWaterMark / PULL_SHARE));
    if (start.timeout !== Infinity) {
      this.#timer = setTimeout(() => void this.cancel(new CallTimeoutError(`stream did not end within its timeout of ${start.timeout} ms${this.#lease ? ` on runner ${this.#lease.runner}` : ''}; the remote generator was cancelled`, {
        ...(this.#lease ? { runner: this.#lease.runner } : {}), timeout: start.timeout,
      })), start.timeout);
    }
    if (start.signal) {
      const signal = start.signal;
      const aborted = () => void this.cancel(new AbortError('stream aborted by its signal; the remote generator was cancelled', { cause: signal.reason }));
      if (signal.aborted) queueMicrotask(aborted);
      else this.#unsubscribe = onAbort(signal, aborted);
    }
    void this.#open();
  }

  get #buffered(): number {
    return this.#items.length - this.#head;
  }

  async #open(): Promise<void> {
    const { source, shipped, args, timeout, highWaterMark } = this.#s;
    let lease: Lease;
    try {
      lease = await source.lease(this.#deadline, this.#controller.signal, 'stream', timeout, true);
    } catch (error) {
      this.#fail(error as Error);
      return;
    }
    if (this.#state !== 'opening') {
      lease.release();
      return;
    }
    this.#lease = lease;
    this.#leasedAt = performance.now();
    this.#state = 'open';
    // The runner's death is seen even when no pull is outstanding (the caller reading slowly).
    this.#unmonitor = source.node.monitor(lease.node, (reason) => void this.#linkFailed(reason));
    const remaining = this.#deadline - performance.now();
    const request: StreamOpenRequest = {
      id: this.#id, fn: shipped, args, window: highWaterMark, timeout: remaining === Infinity ? -1 : Math.max(1, Math.floor(remaining)),
    };
    this.#request(STREAM_SERVICE.open, request, highWaterMark);
  }

  /** Sends an open or pull asking for `max` items; its reply is taken in order by #takeReplies. */
  #request(service: string, payload: unknown, max: number): void {
    const pull = new Pull(max, this.#takeReplies);
    this.#pulls.push(pull);
    this.#credit += max;
    this.#s.source.node.requestTo(this.#lease!.node, service, payload, pull, undefined, this.#controller.signal);
  }

  /** Takes the replies at the head of the pulls in flight, in the order the pulls went out. */
  readonly #takeReplies = (): void => {
    let took = false;
    while (this.#pulls.length > 0 && this.#pulls[0]!.settledAs) {
      const pull = this.#pulls.shift()!;
      this.#credit -= pull.max;
      if (this.#state !== 'open' || this.#pullFailed) continue;
      const { ok, value } = pull.settledAs!;
      if (!ok) {
        this.#pullFailed = true;
        void this.#requestFailed(value);
        continue;
      }
      const batch = value as StreamBatch | undefined;
      const items = Array.isArray(batch?.items) ? batch.items : [];
      if (items.length > pull.max) {
        // Taking them would break the caller's memory bound: the runner broke the protocol.
        this.#pullFailed = true;
        this.#fail(new ProtocolError(`runner ${this.#lease!.runner} sent a stream batch of ${items.length} items where ${pull.max} were asked for`));
        continue;
      }
      for (let i = 0; i < items.length; i++) this.#items.push(items[i]);
      if (batch?.done === true) this.#end('ended');
      took = true;
    }
    if (!took) return;
    this.#serve();
    this.#pullIfRoom();
  };

  async #requestFailed(error: unknown): Promise<void> {
    if (this.#state !== 'open') return;
    const failure = await this.#lease!.failure(error);
    // The runner's stream has ended with its error: nothing to cancel there.
    this.#fail(failure, false);
  }

  async #linkFailed(reason: Error): Promise<void> {
    if (this.#state !== 'open') return;
    this.#fail(await this.#lease!.failure(reason instanceof NodeDownError ? reason : new NodeDownError(reason.message)), false);
  }

  /**
   * Asks for more once a share of the window is free: the items held here plus those asked for
   * stay within `highWaterMark` (an empty buffer with nothing asked for always has room).
   */
  #pullIfRoom(): void {
    if (this.#state !== 'open' || this.#pullFailed) return;
    const room = this.#s.highWaterMark - this.#buffered - this.#credit;
    if (room < this.#pullAt) return;
    this.#request(STREAM_SERVICE.pull, { id: this.#id, max: room }, room);
  }

  next(): Promise<IteratorResult<unknown>> {
    if (this.#buffered > 0 && this.#waiters.length === 0) {
      const value = this.#shift();
      this.#pullIfRoom();
      return Promise.resolve({ value, done: false });
    }
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
      this.#serve();
      this.#pullIfRoom();
    });
  }

  #shift(): unknown {
    const value = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return value;
  }

  /** Hands items, then the end or the error (once), to waiting readers in order. */
  #serve(): void {
    while (this.#waiters.length > 0) {
      if (this.#buffered > 0) {
        this.#waiters.shift()!.resolve({ value: this.#shift(), done: false });
      } else if (this.#state === 'failed' && !this.#errorDelivered) {
        this.#errorDelivered = true;
        this.#waiters.shift()!.reject(this.#error);
      } else if (this.#state === 'ended' || this.#state === 'failed' || this.#state === 'cancelled') {
        this.#waiters.shift()!.resolve({ value: undefined, done: true });
      } else {
        return;
      }
    }
  }

  /**
   * Cancels the stream: with `reason` (deadline, signal) readers get it; without (`return()`,
   * disposal, garbage collection) they get the end. The runner closes the generator; the
   * promise resolves once it confirmed (or could not be reached).
   */
  cancel(reason?: Error): Promise<void> {
    if (this.#state === 'opening' || this.#state === 'open') {
      const wasOpen = this.#state === 'open';
      this.#items = [];
      this.#head = 0;
      if (reason) {
        this.#error = reason;
        this.#state = 'failed';
      } else {
        this.#state = 'cancelled';
      }
      this.#serve();
      this.#closed = wasOpen ? this.#closeRemote() : Promise.resolve();
      // A waiting checkout or an outstanding pull stops at once (the runner hears of it too).
      this.#controller.abort(reason ?? new AbortError('stream cancelled'));
      if (!wasOpen) this.#finish();
    }
    return this.#closed ?? Promise.resolve();
  }

  /** Asks the runner to close the generator and waits for its `finally`, then gives the slot back. */
  async #closeRemote(): Promise<void> {
    const lease = this.#lease!;
    await this.#s.source.node.request(lease.node, STREAM_SERVICE.cancel, { id: this.#id }, { timeout: CANCEL_WAIT_MS }).catch(() => {});
    this.#finish();
  }

  #end(state: 'ended'): void {
    this.#state = state;
    this.#finish();
  }

  #fail(error: Error, closeRemote = true): void {
    if (this.#state === 'opening' || (this.#state === 'open' && closeRemote)) {
      void this.cancel(error);
      return;
    }
    if (this.#state !== 'open') return;
    this.#error = error;
    this.#state = 'failed';
    this.#finish();
    this.#serve();
  }

  /** Gives everything back: the slot, the timer, the monitor, the signal's listener. Idempotent. */
  #finish(): void {
    clearTimeout(this.#timer);
    this.#unmonitor?.();
    this.#unsubscribe?.();
    this.#lease?.release();
    const trace = this.#trace;
    if (trace !== undefined) {
      this.#trace = undefined;
      const lease = this.#lease;
      const now = performance.now();
      trace.attempt(lease?.runner, lease?.node, (lease ? this.#leasedAt : now) - this.#startedAt, lease ? now - this.#leasedAt : 0);
      // Ended or cancelled by its reader is a success; a failure carries the stream's error.
      trace.settled(this.#state !== 'failed', this.#state === 'failed' ? this.#error : undefined);
    }
  }
}

/** Cancels streams whose handle was garbage-collected before they ended. */
const abandoned = new FinalizationRegistry<StreamCore>((core) => void core.cancel());

/**
 * The caller's side of `pool.stream`: an async iterator (use it with `for await`), also
 * disposable with `await using`. Items arrive in order; see the module comment for the rest.
 */
export class RemoteStream<T> implements AsyncIterableIterator<T>, AsyncDisposable {
  readonly #core: StreamCore;

  /** @internal Made by `pool.stream`. */
  constructor(start: StreamStart) {
    this.#core = new StreamCore(start);
    abandoned.register(this, this.#core, this.#core);
  }

  /** The next item; rejects with the stream's error (once, after the items before it). */
  next(): Promise<IteratorResult<T, undefined>> {
    return this.#core.next() as Promise<IteratorResult<T, undefined>>;
  }

  /** Cancels the stream (what `break` does); resolves once the remote generator's `finally` ran. */
  async return(): Promise<IteratorResult<T, undefined>> {
    abandoned.unregister(this.#core);
    await this.#core.cancel();
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.return();
  }
}
