/**
 * The parent's view of one runner: where it is, what it is doing, how loaded it is.
 */
import type { RunnerInstance } from './backend.js';

export type RunnerState = 'booting' | 'ready' | 'draining' | 'stopped';

/** A runner as `pool.status()` reports it. */
export interface RunnerStatus {
  id: string;
  /** Its node, once connected (e.g. `thumbs-3@127.2.0.3:41234`). */
  node: string | undefined;
  state: RunnerState;
  /** Calls running plus actors placed on it. */
  load: number;
  /** Where the backend put it: a pid, a pod name. */
  description: string | undefined;
}

export class RunnerHandle {
  readonly id: string;
  /** Boot order: ties in placement go to the older runner, deterministically. */
  readonly seq: number;
  node: string | undefined;
  state: RunnerState = 'booting';
  load = 0;
  instance: RunnerInstance | undefined;
  readonly bootStartedAt = performance.now();
  /** When load last dropped to 0 (monotonic ms). */
  idleSince = performance.now();
  /** Ids of actors placed on it, each holding one slot. */
  readonly placed = new Set<number>();
  /** Its node went down: no new work, whatever the supervisor has not yet handled. */
  lost = false;
  /** Called once the supervisor has handled its boot result. */
  onSupervised: (() => void) | undefined;
  /** Why it is draining or stopped. */
  reason: string | undefined;
  /** Why it ended, as its backend reported it (a process's fatal error, a pod's reason). */
  exitedBecause: string | undefined;
  #onExit: (() => void)[] = [];

  constructor(id: string, seq: number) {
    this.id = id;
    this.seq = seq;
  }

  /** The backend reports that the runner ended, and why. */
  exited(reason: string): void {
    this.exitedBecause ??= reason;
    for (const resolve of this.#onExit.splice(0)) resolve();
  }

  /** Resolves once the backend has said why the runner ended, or after `ms`. */
  exitReason(ms: number): Promise<void> {
    if (this.exitedBecause !== undefined) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#onExit.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  status(): RunnerStatus {
    return { id: this.id, node: this.node, state: this.state, load: this.load, description: this.instance?.description };
  }
}
