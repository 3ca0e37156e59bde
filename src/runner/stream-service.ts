/**
 * The runner side of streams (`pool.stream`) and tracked resources (`pool.track`): things that
 * live on the runner after the request that made them was answered. Each one counts as a running
 * call for the terminator (the runner neither idles out nor finishes draining while it lives)
 * until it ends or its caller releases it; one whose caller's node goes down is closed.
 *
 * A stream is pulled: the runner runs the generator ahead of the caller by at most `window`
 * items (its prefetch), and only while a pull has asked for items or the prefetch has room, so a
 * caller that stops consuming pauses the generator (backpressure). Pulls queue (the caller keeps
 * several in flight, within the window in all); a pull is answered as soon as it can be filled,
 * else one event-loop turn after its first item with whatever the generator produced meanwhile
 * (a fast generator fills batches, a slow one is not held back). A synchronous iterable is stepped
 * in a plain loop: wrapping it as an async iterator cost a promise per item.
 */
import type { ClusterNode, RequestContext } from '../cluster/node.js';
import { AbortError, CallTimeoutError, InvalidOptionError, ProtocolError, QueryTimeoutError } from '../errors.js';
import {
  STREAM_SERVICE, type StreamBatch, type StreamCancelRequest, type StreamOpenRequest, type StreamPullRequest, type TrackReply, type TrackRequest,
} from '../flame/stream-protocol.js';
import type { Logger } from '../log.js';
import { CallCancellation, startWith } from './call-context.js';
import type { FunctionLoader } from './fn-loader.js';
import type { Terminator } from './terminator.js';

/** How long a cancel waits for a generator's `finally` (or a resource's release) before answering anyway. */
const CLOSE_WAIT_MS = 10_000;
/** The runner's own deadline of a stream comes this long after the caller's, which cancels first. */
const DEADLINE_GRACE_MS = 1000;
/** Largest prefetch window a caller may ask for. */
const MAX_WINDOW = 10_000;

/** Something on this runner that outlives its request: a stream or a tracked resource. */
interface Resource {
  /** Ends it (runs the generator's `finally`, or the resource's `release`); idempotent. */
  close(reason: Error): Promise<void>;
}

export interface StreamServicesOptions {
  node: ClusterNode;
  runner: string;
  loader: FunctionLoader;
  terminator: Terminator;
  logger: Logger;
  /** Throws RunnerDownError while the runner drains. */
  refuseWhileDraining(what: string): void;
}

/** The contract a tracked function's result may implement: `value` goes to the caller, `release` runs here when the caller lets go. */
interface TrackableShape {
  value?: unknown;
  release(): unknown;
}

function isTrackable(value: unknown): value is TrackableShape {
  return typeof value === 'object' && value !== null && typeof (value as { release?: unknown }).release === 'function';
}

type StreamState = 'running' | 'ended' | 'failed' | 'closed';

/** A pull waiting for items: at most `max` of them. */
interface WaitingPull {
  max: number;
  resolve(batch: StreamBatch): void;
  reject(error: unknown): void;
}

/**
 * One stream: the generator, what it produced ahead of the caller, and the pulls waiting for
 * items (several at once: the caller keeps pulls in flight so the link never idles, the items
 * they ask for in all within the window). A pull is answered at once when there are `max` items
 * (or the end) for it, else one event-loop turn after its first item, with what there is then.
 */
class RunnerStream implements Resource {
  readonly #window: number;
  readonly #cancellation = new CallCancellation();
  readonly #onFinished: () => void;
  #iterator: AsyncIterator<unknown> | undefined;
  /** The iterator of a synchronous iterable, stepped without a promise per item. */
  #syncIterator: Iterator<unknown> | undefined;
  #state: StreamState = 'running';
  #error: unknown;
  #pending: unknown[] = [];
  #pulls: WaitingPull[] = [];
  /** Items the waiting pulls ask for in all. */
  #asked = 0;
  #pumping = false;
  #flushScheduled = false;
  #started = false;
  #finished = false;
  /** The caller was sent the end (a batch with `done`) or the error. */
  #told = false;
  #opened = false;
  #closing: Promise<void> | undefined;

  constructor(window: number, onFinished: () => void) {
    this.#window = window;
    this.#onFinished = onFinished;
  }

  /** Calls the function and takes its iterable; resolves to the first batch. */
  async open(fn: (...args: unknown[]) => unknown, args: unknown[]): Promise<StreamBatch> {
    try {
      const made = await startWith(this.#cancellation, () => fn(...args));
      const it = iteratorOf(made);
      if (it.sync) this.#syncIterator = it.sync;
      else this.#iterator = it.async;
    } catch (error) {
      this.#state = 'failed';
      this.#error = error;
    }
    this.#opened = true;
    return this.pull(this.#window);
  }

  /** A batch of at most `max` items: at once when there are that many (or the end), else soon. */
  pull(max: number): Promise<StreamBatch> {
    if (!this.#opened) return Promise.reject(new ProtocolError('a stream is pulled once its open was answered'));
    const asked = Math.max(1, Math.min(max, this.#window));
    if (this.#asked + asked > this.#window) {
      return Promise.reject(new ProtocolError(`a stream's pulls in flight ask for at most its window (${this.#window} items) in all`));
    }
    return new Promise<StreamBatch>((resolve, reject) => {
      this.#pulls.push({ max: asked, resolve, reject });
      this.#asked += asked;
      this.#answer(false);
      this.#flushSoon();
      this.#pump();
    });
  }

  close(reason: Error): Promise<void> {
    this.#closing ??= this.#close(reason);
    return this.#closing;
  }

  async #close(reason: Error): Promise<void> {
    const wasRunning = this.#state === 'running';
    this.#state = 'closed';
    this.#pending = [];
    this.#cancellation.abort(reason);
    // Pulls still waiting learn why (their caller may not know yet: the runner's own deadline).
    const pulls = this.#pulls;
    this.#pulls = [];
    this.#asked = 0;
    for (const pull of pulls) pull.reject(reason);
    // `return()` runs the generator's `finally` (after its current step, if it is mid-step).
    const iterator = this.#syncIterator ?? this.#iterator;
    if (wasRunning && iterator?.return) {
      await bounded(Promise.resolve().then(() => iterator.return!()), CLOSE_WAIT_MS).catch(() => {});
    }
    this.#finish();
  }

  /** Runs the generator while there is room (prefetch below the window). */
  #pump(): void {
    if (this.#pumping || this.#state !== 'running' || this.#pending.length >= this.#window) return;
    if (this.#syncIterator) {
      this.#pumping = true;
      try {
        this.#runSync(this.#syncIterator);
      } finally {
        this.#pumping = false;
      }
      this.#flushSoon();
      return;
    }
    if (!this.#iterator) return;
    this.#pumping = true;
    void this.#run(this.#iterator).finally(() => {
      this.#pumping = false;
      this.#flushSoon();
    });
  }

  async #run(iterator: AsyncIterator<unknown>): Promise<void> {
    while (this.#state === 'running' && this.#pending.length < this.#window) {
      let step: IteratorResult<unknown>;
      try {
        // The generator's body starts on its first next(): `callSignal()` works at its top.
        step = this.#started ? await iterator.next() : await startWith(this.#cancellation, () => iterator.next());
        this.#started = true;
      } catch (error) {
        this.#failed(error);
        return;
      }
      if (this.#state !== 'running') return; // closed while it stepped: the item is dropped
      this.#took(step);
    }
  }

  #runSync(iterator: Iterator<unknown>): void {
    while (this.#state === 'running' && this.#pending.length < this.#window) {
      let step: IteratorResult<unknown>;
      try {
        step = this.#started ? iterator.next() : startWith(this.#cancellation, () => iterator.next());
        this.#started = true;
      } catch (error) {
        this.#failed(error);
        return;
      }
      this.#took(step);
    }
  }

  /** A step of the generator: an item (answered at once when it fills the oldest pull) or the end. */
  #took(step: IteratorResult<unknown>): void {
    if (typeof step !== 'object' || step === null) {
      this.#failed(new InvalidOptionError(`pool.stream: the iterator's next() must give { value, done }, got ${step === null ? 'null' : typeof step}`, {
        option: 'fn', expected: 'a function returning an AsyncIterable or an Iterable',
      }));
      return;
    }
    if (step.done) {
      this.#state = 'ended';
      this.#answer(false);
      return;
    }
    this.#pending.push(step.value);
    if (this.#pulls.length > 0 && this.#pending.length >= this.#pulls[0]!.max) this.#answer(false);
    else this.#flushSoon();
  }

  #failed(error: unknown): void {
    if (this.#state !== 'running') return;
    this.#state = 'failed';
    this.#error = error;
    this.#answer(false);
  }

  /** Answers the waiting pulls one turn after there is something to answer, so items batch up. */
  #flushSoon(): void {
    if (this.#flushScheduled || this.#pulls.length === 0 || (this.#pending.length === 0 && this.#state === 'running')) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      this.#answer(true);
    });
  }

  /**
   * Answers waiting pulls in order: full batches (or, with `partial`, whatever is pending), then
   * the end, or the error (to every pull left: the first tells the caller, the rest are moot).
   */
  #answer(partial: boolean): void {
    while (this.#pulls.length > 0) {
      const pull = this.#pulls[0]!;
      if (this.#pending.length > 0) {
        if (!partial && this.#state === 'running' && this.#pending.length < pull.max) break;
        const items = this.#pending.length <= pull.max ? this.#pending.splice(0) : this.#pending.splice(0, pull.max);
        const done = this.#state === 'ended' && this.#pending.length === 0;
        this.#told ||= done;
        this.#shiftPull().resolve({ items, done });
      } else if (this.#state === 'ended' || this.#state === 'closed') {
        this.#told = true;
        this.#shiftPull().resolve({ items: [], done: true });
      } else if (this.#state === 'failed') {
        this.#told = true;
        this.#shiftPull().reject(this.#error);
      } else {
        break;
      }
    }
    if (this.#state !== 'running' && this.#pending.length === 0 && this.#told) this.#finish();
    else this.#pump();
  }

  #shiftPull(): WaitingPull {
    const pull = this.#pulls.shift()!;
    this.#asked -= pull.max;
    return pull;
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#onFinished();
  }
}

/** A tracked resource: released when the caller releases its handle (or its node goes down). */
class TrackedResource implements Resource {
  readonly #release: () => unknown;
  readonly #onFinished: () => void;
  #closing: Promise<void> | undefined;

  constructor(release: () => unknown, onFinished: () => void) {
    this.#release = release;
    this.#onFinished = onFinished;
  }

  close(): Promise<void> {
    this.#closing ??= bounded(Promise.resolve().then(() => this.#release()), CLOSE_WAIT_MS)
      .then(() => {}, () => {})
      .finally(() => this.#onFinished());
    return this.#closing;
  }
}

/** The iterator of a stream function's result: an AsyncIterable (generator, Readable), or an Iterable (stepped synchronously). */
function iteratorOf(value: unknown): { sync: Iterator<unknown>; async?: undefined } | { sync?: undefined; async: AsyncIterator<unknown> } {
  if (typeof value === 'object' && value !== null) {
    const asyncIt = (value as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator];
    if (typeof asyncIt === 'function') return { async: (asyncIt as () => AsyncIterator<unknown>).call(value) };
    const syncIt = (value as { [Symbol.iterator]?: unknown })[Symbol.iterator];
    if (typeof syncIt === 'function') return { sync: (syncIt as () => Iterator<unknown>).call(value) };
  }
  throw new InvalidOptionError(`pool.stream: the function must return an AsyncIterable (an async generator, a Readable) or an Iterable, got ${value === null ? 'null' : typeof value}`, {
    option: 'fn', expected: 'a function returning an AsyncIterable or an Iterable',
  });
}

/** A deadline a timer can keep: milliseconds from 0 to 2^31 - 1 (-1, or anything else, means none). */
function isDelay(ms: unknown): ms is number {
  return typeof ms === 'number' && ms >= 0 && ms <= MAX_TIMER_MS;
}
const MAX_TIMER_MS = 2 ** 31 - 1 - DEADLINE_GRACE_MS;

/** `promise`, or a rejection after `ms`. */
function bounded<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new CallTimeoutError(`did not finish within ${ms} ms`)), ms);
    promise.then((v) => {
      clearTimeout(timer);
      resolve(v);
    }, (e: unknown) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

export function installStreamServices({ node, runner, loader, terminator, logger, refuseWhileDraining }: StreamServicesOptions): void {
  /** Live resources by `<peer> <id>`: ids are chosen by each parent node. */
  const resources = new Map<string, Resource>();
  const keyOf = (peer: string, id: unknown): string => {
    if (typeof id !== 'number' || !Number.isSafeInteger(id)) throw new ProtocolError('a stream request needs a numeric id');
    return `${peer} ${id}`;
  };
  /** Registers a resource: it holds a slot (a running call, for the terminator) until it finishes. */
  const register = (key: string, resource: Resource): void => {
    if (resources.has(key)) throw new ProtocolError(`stream or resource ${key} already exists on ${runner}`);
    resources.set(key, resource);
    terminator.callStarted();
  };
  /**
   * A stream is work: it counts as a running call, which a draining runner waits for. A tracked
   * resource only holds the runner: it counts as a placed child, which keeps the runner from
   * idling out but does not hold up a drain (a stopping pool does not wait for its holders).
   */
  const finished = (key: string, held: 'call' | 'child') => () => {
    if (!resources.delete(key)) return;
    if (held === 'call') terminator.callEnded();
    else terminator.childStopped();
  };
  /** Deadline and cancellation of the opening request close the resource. */
  const guard = (key: string, timeout: unknown, context: RequestContext, grace: number): (() => void) => {
    const close = (reason: Error) => void resources.get(key)?.close(reason);
    context.onCancel((reason) => close(reason instanceof QueryTimeoutError ? new CallTimeoutError(`stream exceeded its deadline on ${runner}`) : reason));
    const timer = isDelay(timeout)
      ? setTimeout(() => close(new CallTimeoutError(`exceeded its deadline of ${timeout} ms on ${runner}`)), timeout + grace)
      : undefined;
    timer?.unref();
    return () => clearTimeout(timer);
  };

  node.handle(STREAM_SERVICE.open, async (payload, context) => {
    const request = payload as StreamOpenRequest;
    refuseWhileDraining('streams');
    const key = keyOf(context.peer, request?.id);
    const window = typeof request.window === 'number' && request.window >= 1 ? Math.min(Math.floor(request.window), MAX_WINDOW) : 64;
    let clearDeadline = () => {};
    const stream = new RunnerStream(window, () => {
      clearDeadline();
      finished(key, 'call')();
    });
    register(key, stream);
    // The caller cancels at its deadline; this is the backstop for a caller that went quiet.
    clearDeadline = guard(key, request.timeout, context, DEADLINE_GRACE_MS);
    let fn: (...args: unknown[]) => unknown;
    try {
      fn = await loader.load(request.fn);
    } catch (error) {
      void stream.close(new AbortError('the stream function could not be loaded'));
      throw loader.importFailure(error) ?? error;
    }
    return stream.open(fn, Array.isArray(request.args) ? request.args : []);
  });

  node.handle(STREAM_SERVICE.pull, (payload, context) => {
    const { id, max } = (payload ?? {}) as Partial<StreamPullRequest>;
    const resource = resources.get(keyOf(context.peer, id));
    if (!(resource instanceof RunnerStream)) throw new ProtocolError(`no stream ${String(id)} of ${context.peer} on ${runner}: it ended or was cancelled`);
    // A pull the caller abandons (its signal, its deadline) ends the stream.
    context.onCancel((reason) => void resource.close(reason));
    return resource.pull(typeof max === 'number' && max >= 1 ? Math.floor(max) : 1);
  });

  node.handle(STREAM_SERVICE.cancel, async (payload, context) => {
    const { id } = (payload ?? {}) as Partial<StreamCancelRequest>;
    await resources.get(keyOf(context.peer, id))?.close(new AbortError('cancelled by the caller'));
    return true;
  });

  node.handle(STREAM_SERVICE.track, async (payload, context) => {
    const request = payload as TrackRequest;
    refuseWhileDraining('tracked calls');
    const key = keyOf(context.peer, request?.id);
    const cancellation = new CallCancellation();
    // Making the resource is a call; once made, the resource holds the runner (see finished()).
    terminator.callStarted();
    let cancelled = false;
    context.onCancel((reason) => {
      cancelled = true;
      cancellation.abort(reason);
    });
    const timer = isDelay(request.timeout)
      ? setTimeout(() => cancellation.abort(new CallTimeoutError(`tracked call exceeded its deadline of ${request.timeout} ms on ${runner}`)), request.timeout)
      : undefined;
    try {
      const fn = await loader.load(request.fn);
      const made = await startWith(cancellation, () => fn(...(Array.isArray(request.args) ? request.args : [])));
      const release = isTrackable(made) ? () => made.release() : () => undefined;
      if (resources.has(key)) throw new ProtocolError(`resource ${key} already exists on ${runner}`);
      const resource = new TrackedResource(release, finished(key, 'child'));
      resources.set(key, resource);
      // Counted as a child before the call ends, so the idle clock never starts in between.
      terminator.childPlaced();
      // Its caller gave up (deadline, signal) while it was being made: nobody will release it.
      if (cancelled) void resource.close();
      return { value: isTrackable(made) ? made.value : made } satisfies TrackReply;
    } catch (error) {
      throw loader.importFailure(error) ?? error;
    } finally {
      if (timer) clearTimeout(timer);
      terminator.callEnded();
    }
  });

  // A caller whose node is gone will never release or pull: close what it held.
  node.on('nodedown', (peer) => {
    for (const [key, resource] of resources) {
      if (key.startsWith(`${peer} `)) {
        logger.info(`closing ${key}: its caller's node went down`);
        void resource.close(new AbortError(`the caller's node ${peer} went down`));
      }
    }
  });
}
