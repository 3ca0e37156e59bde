/**
 * Tracked resources (`pool.track`), FLAME's `track_resources`: a call whose result lives on on
 * the runner (an open file, a cache, a child process, a server) returns a {@link Tracked} handle,
 * and the runner stays, its slot held, until the caller releases the handle: with `release()`,
 * `await using`, or when the handle is garbage-collected. The runner side is in
 * src/runner/stream-service.ts: the function returns a {@link Trackable} (`value` goes to the
 * caller, `release()` runs on the runner when the caller lets go) or any other value (then
 * there is nothing to run at release, the runner is only kept).
 *
 * As for streams, the state lives in a core that the runner monitor refers to, and the public
 * handle is a thin wrapper around it, so that a FinalizationRegistry can see the caller drop it.
 */
import type { CallTrace } from '../observability/diagnostics.js';
import type { FnArgs, FnResult, ShippedFunction } from './fn-ref.js';
import { nextResourceId, type Lease, type LeaseSource } from './lease.js';
import { STREAM_SERVICE, type TrackReply, type TrackRequest } from './stream-protocol.js';
import type { Wire } from './wire-types.js';

/** How long `release()` waits for the runner to confirm the resource's `release` ran. */
const RELEASE_WAIT_MS = 15_000;

/**
 * What a tracked function may return on the runner: `value` is what the caller's handle holds
 * (it crosses the wire), `release()` runs on the runner when the caller releases the handle.
 *
 * ```ts
 * export async function openScratch(): Promise<Trackable<string>> {
 *   const dir = await mkdtemp(join(tmpdir(), 'scratch-'));
 *   return { value: dir, release: () => rm(dir, { recursive: true }) };
 * }
 * ```
 */
export interface Trackable<T = unknown> {
  readonly value: T;
  release(): void | Promise<void>;
}

/** Options of `pool.track`. */
export interface TrackOptions {
  /** Deadline for getting a slot and the function returning its resource, in ms. Default: the pool's `timeout`. */
  timeout?: number;
  /** Cancels waiting or the running function. */
  signal?: AbortSignal;
}

/** What follows the function in `pool.track`: its arguments (typed as its parameters) and options. */
export type TrackRest<F> = [] extends FnArgs<F>
  ? [args?: FnArgs<F>, options?: TrackOptions]
  : [args: FnArgs<F>, options?: TrackOptions];

/** The value a handle holds: a Trackable's `value`, else the result itself, after the wire. */
export type TrackedValue<F> = FnResult<F> extends Trackable<infer V> ? Wire<V> : Wire<FnResult<F>>;

/** `released` by the caller (or the collector), or `lost` with its runner. */
export type TrackedState = 'held' | 'released' | 'lost';

class TrackedCore {
  readonly #node: LeaseSource['node'];
  readonly #lease: Lease;
  readonly #id: number;
  #state: TrackedState = 'held';
  #released: Promise<void> | undefined;
  readonly #unmonitor: () => void;

  constructor(node: LeaseSource['node'], lease: Lease, id: number) {
    this.#node = node;
    this.#lease = lease;
    this.#id = id;
    this.#unmonitor = node.monitor(lease.node, () => {
      if (this.#state !== 'held') return;
      this.#state = 'lost';
      lease.release();
    });
  }

  get state(): TrackedState {
    return this.#state;
  }

  release(): Promise<void> {
    if (this.#state === 'held') {
      this.#state = 'released';
      this.#unmonitor();
      this.#released = this.#node.request(this.#lease.node, STREAM_SERVICE.cancel, { id: this.#id }, { timeout: RELEASE_WAIT_MS })
        .then(() => {}, () => {})
        .finally(() => this.#lease.release());
    }
    return this.#released ?? Promise.resolve();
  }
}

/** Releases resources whose handle was garbage-collected while held. */
const abandoned = new FinalizationRegistry<TrackedCore>((core) => void core.release());

/** A resource on a runner, held (with its runner and one slot) until released. */
export class Tracked<T> implements AsyncDisposable {
  /** What the function returned (a Trackable's `value`), as it arrived. */
  readonly value: T;
  /** The runner it lives on. */
  readonly runner: string;
  readonly #core: TrackedCore;

  /** @internal Made by `pool.track`. */
  constructor(value: T, runner: string, core: TrackedCore) {
    this.value = value;
    this.runner = runner;
    this.#core = core;
    abandoned.register(this, core, core);
  }

  /** `held`, `released`, or `lost` (its runner went down). */
  get state(): TrackedState {
    return this.#core.state;
  }

  /** Runs the resource's `release` on the runner and gives its slot back; resolves once it ran. Idempotent. */
  release(): Promise<void> {
    abandoned.unregister(this.#core);
    return this.#core.release();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }
}

export interface TrackStart {
  source: LeaseSource;
  shipped: ShippedFunction;
  args: unknown[];
  timeout: number;
  signal: AbortSignal | undefined;
  /** Its `flame-actors:call` trace, when someone listens: told the runner it ran on. */
  trace?: CallTrace | undefined;
}

/** Runs a tracked call: a slot, the function on the runner, and a handle holding both. */
export async function track<T>({ source, shipped, args, timeout, signal, trace }: TrackStart): Promise<Tracked<T>> {
  const started = performance.now();
  const deadline = started + timeout;
  const lease = await source.lease(deadline, signal, 'tracked call', timeout, false);
  const leasedAt = performance.now();
  const id = nextResourceId();
  try {
    const remaining = deadline - performance.now();
    const request: TrackRequest = { id, fn: shipped, args, timeout: remaining === Infinity ? -1 : Math.max(1, Math.floor(remaining)) };
    const reply = (await source.node.request(lease.node, STREAM_SERVICE.track, request, { timeout: remaining, ...(signal ? { signal } : {}) })) as TrackReply;
    return new Tracked(reply?.value as T, lease.runner, new TrackedCore(source.node, lease, id));
  } catch (error) {
    const failure = await lease.failure(error);
    lease.release();
    throw failure;
  } finally {
    // What the trace reports, however the call ended (before its promise settles).
    trace?.attempt(lease.runner, lease.node, leasedAt - started, performance.now() - leasedAt);
  }
}
