/**
 * `stopOnSignals(pools)`: an opt-in way for an app to stop its pools when its pod is asked to
 * stop. Kubernetes sends SIGTERM, waits the pod's `terminationGracePeriodSeconds` (30 s unless
 * set), then SIGKILLs: a parent killed before its pools stopped leaves its runner pods to the
 * garbage collector (or, with `omitOwnerReference`, running). So the pools get the grace period
 * minus a safety margin; if they are not stopped by then, every Kubernetes runner pod and cookie
 * Secret is deleted without grace, and the process exits before the SIGKILL.
 */
import type { Pool } from '../flame/pool.js';
import { KubernetesBackend } from './kubernetes/backend.js';

export interface StopOnSignalsOptions {
  /** Default `['SIGTERM', 'SIGINT']`. */
  signals?: NodeJS.Signals[];
  /**
   * The time the process has after the signal, in ms. Default: the parent pod's
   * `terminationGracePeriodSeconds` as the Kubernetes backend read it, else 30 s.
   */
  gracePeriod?: number;
  /** Exit once the pools are stopped (code 0; 1 when something was left behind). Default true. */
  exit?: boolean;
  /** Called with what happened, for the app's own log. */
  onStopped?: (outcome: StopOutcome) => void;
}

export interface StopOutcome {
  signal: NodeJS.Signals;
  /** How long the stop took, in ms. */
  ms: number;
  /** False when the pools did not stop in time and their pods were deleted without grace. */
  graceful: boolean;
  /** Runner pods and Secrets that could not be deleted at all. */
  leftovers: string[];
}

/** Kept for the process to exit before the SIGKILL. */
const SAFETY_MARGIN_MS = 2000;
/** The part of the grace period kept for deleting whatever the pools did not. */
const CLEANUP_RESERVE_MS = 3000;

/** Stops `pools` on SIGTERM/SIGINT within the pod's grace period, then exits. Returns a function that removes the handlers. */
export function stopOnSignals(pools: Pool | readonly Pool[], options: StopOnSignalsOptions = {}): () => void {
  const list = Array.isArray(pools) ? [...pools] : [pools as Pool];
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    void stopWithin(list, signal, options).then((outcome) => {
      try {
        options.onStopped?.(outcome);
      } finally {
        if (options.exit ?? true) process.exit(outcome.leftovers.length > 0 ? 1 : 0);
      }
    });
  };
  for (const signal of signals) process.on(signal, handler);
  return () => {
    for (const signal of signals) process.off(signal, handler);
  };
}

async function stopWithin(pools: Pool[], signal: NodeJS.Signals, options: StopOnSignalsOptions): Promise<StopOutcome> {
  const started = performance.now();
  const backends = KubernetesBackend.active();
  const grace = options.gracePeriod ?? (backends.length > 0 ? Math.min(...backends.map((b) => b.parentGracePeriodSeconds)) * 1000 : 30_000);
  const budget = Math.max(0, grace - SAFETY_MARGIN_MS);
  const reserve = Math.min(CLEANUP_RESERVE_MS, budget / 3);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), budget - reserve)));
  const stopped = Promise.allSettled(pools.map((p) => p.stop())).then(() => 'stopped' as const);
  const first = await Promise.race([stopped, late]);
  clearTimeout(timer);
  const leftovers: string[] = [];
  if (first === 'late') {
    const results = await Promise.all(backends.map((b) => b.forceCleanup(reserve)));
    for (const r of results) leftovers.push(...r.pods.map((p) => `pod ${p}`), ...(r.secret ? [`Secret ${r.secret}`] : []));
  }
  return { signal, ms: performance.now() - started, graceful: first === 'stopped', leftovers };
}
