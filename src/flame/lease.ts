/**
 * A lease: one slot of one runner, held by work that outlives a single request (a stream, a
 * tracked resource) until it gives the slot back. The pool's core hands leases out; streams and
 * tracked handles only see this interface.
 */
import type { ClusterNode } from '../cluster/node.js';
import { OptionReader } from '../validate.js';

export interface Lease {
  /** The runner's id (`thumbs-3`). */
  readonly runner: string;
  /** The runner's node. */
  readonly node: string;
  /** Gives the slot back; idempotent. */
  release(): void;
  /**
   * What a failed request on this runner becomes for the caller: RunnerDownError (with the reason
   * the backend gave) when its link died, CallTimeoutError past the deadline, else the error.
   */
  failure(error: unknown): Promise<Error>;
}

/** Where leases come from: the pool's core. */
export interface LeaseSource {
  /** The parent node requests go through. */
  readonly node: ClusterNode;
  /**
   * Takes a slot within `deadline` (monotonic ms), or rejects as a call's checkout would
   * (CheckoutTimeoutError, AbortError, PoolStoppedError, PoolOverloadedError). With `inFlight`,
   * the pool's stop waits for the lease (within its shutdownTimeout) like for a call.
   */
  lease(deadline: number, signal: AbortSignal | undefined, what: string, timeout: number, inFlight: boolean): Promise<Lease>;
}

/** Ids of streams and tracked resources, unique per process (so per parent node). */
let nextId = 1;
export function nextResourceId(): number {
  return nextId++;
}

/** Options of `pool.stream` and `pool.track`, validated. */
export interface ResolvedLeaseOptions {
  timeout: number;
  signal: AbortSignal | undefined;
  highWaterMark: number;
}

/** Most items a stream may keep buffered on each side. */
const MAX_HIGH_WATER_MARK = 10_000;
export const DEFAULT_HIGH_WATER_MARK = 64;

export function resolveLeaseOptions(where: string, input: unknown, poolTimeout: number, stream: boolean): ResolvedLeaseOptions {
  const r = new OptionReader(where, input, stream ? ['timeout', 'signal', 'highWaterMark'] : ['timeout', 'signal']);
  const signal = r.raw('signal');
  if (signal !== undefined && !(signal instanceof AbortSignal)) r.fail('signal', 'an AbortSignal');
  return {
    timeout: r.ms('timeout', poolTimeout, { min: 1, allowInfinity: true }),
    signal: signal as AbortSignal | undefined,
    highWaterMark: r.int('highWaterMark', DEFAULT_HIGH_WATER_MARK, 1, MAX_HIGH_WATER_MARK),
  };
}
