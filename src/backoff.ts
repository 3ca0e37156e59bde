/**
 * Exponential backoff with "equal jitter": the delay doubles with each attempt up to `maxMs`, and
 * a random half of it is spread out so that many pools (or watches) retrying the same outage do
 * not come back in lock-step. One rule for every retry loop of the library.
 */
export interface BackoffPolicy {
  /** Delay of the first retry before jitter, in ms. */
  readonly baseMs: number;
  /** Ceiling of the delay before jitter, in ms. */
  readonly maxMs: number;
  /** Apply equal jitter (default true): the delay is uniform in [d/2, d]. */
  readonly jitter?: boolean;
}

/** The delay before retry number `attempt` (1 for the first retry). */
export function backoffDelay(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const exponent = Math.max(0, Math.min(attempt - 1, 30));
  const delay = Math.min(policy.maxMs, policy.baseMs * 2 ** exponent);
  return policy.jitter === false ? delay : delay / 2 + random() * (delay / 2);
}
