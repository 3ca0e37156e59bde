/**
 * The parent's view of one runner: where it is, how loaded it is, and its lifecycle state.
 *
 * The lifecycle is one transition table ({@link RUNNER_TRANSITIONS}): a runner's state changes
 * only through {@link RunnerHandle.fire}, which looks the event up in the table, refuses what the
 * table does not allow (reports about a runner race each other: a node-down and a backend's exit
 * report for the same runner, a retire after a loss) and logs every transition at debug level.
 */
import type { Logger } from '../log.js';
import type { RunnerInstance } from './backend.js';
import type { ShippedFunction } from './fn-ref.js';

/**
 * - `booting`: provisioned and connecting back; no work yet.
 * - `ready`: takes work (when it has a free slot).
 * - `draining`: finishes what it runs and takes nothing new (idle stop, single use, pool stop).
 * - `lost`: its node went down or its process/pod ended; the pool has not yet cleaned up.
 * - `stopped`: gone and forgotten by the pool.
 */
export type RunnerState = 'booting' | 'ready' | 'draining' | 'lost' | 'stopped';

/** What moves a runner between states. */
export type RunnerEvent =
  /** It connected back and the supervisor accepted it. */
  | 'connected'
  /** Its boot failed or timed out. */
  | 'bootFailed'
  /** The pool asked it to finish and go (idle, single use, pool stopping). */
  | 'drain'
  /** Its node went down, or the backend saw it end. */
  | 'down'
  /** The pool forgot it (after a loss, or once a drain ended). */
  | 'gone';

/** The runner lifecycle: for each state, the events it accepts and where they lead. */
export const RUNNER_TRANSITIONS: { readonly [S in RunnerState]: { readonly [E in RunnerEvent]?: RunnerState } } = {
  booting: { connected: 'ready', bootFailed: 'stopped' },
  ready: { drain: 'draining', down: 'lost' },
  draining: { down: 'lost', gone: 'stopped' },
  lost: { gone: 'stopped' },
  stopped: {},
};

export const RUNNER_STATES = Object.keys(RUNNER_TRANSITIONS) as RunnerState[];
export const RUNNER_EVENTS: readonly RunnerEvent[] = ['connected', 'bootFailed', 'drain', 'down', 'gone'];

/** The state `event` leads to from `state`, or undefined when the table refuses it. */
export function nextRunnerState(state: RunnerState, event: RunnerEvent): RunnerState | undefined {
  return RUNNER_TRANSITIONS[state][event];
}

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
  readonly #logger: Logger;
  #state: RunnerState = 'booting';
  #reason: string | undefined;
  node: string | undefined;
  load = 0;
  instance: RunnerInstance | undefined;
  readonly bootStartedAt = performance.now();
  /** When load last dropped to 0 (monotonic ms). */
  idleSince = performance.now();
  /** Ids of actors placed on it, each holding one slot. */
  readonly placed = new Set<number>();
  /** Closures sent to it in full: later calls send only their id. */
  readonly shipped = new WeakSet<ShippedFunction>();
  /** Why it ended, as its backend reported it (a process's fatal error, a pod's reason). */
  exitedBecause: string | undefined;
  #onExit: (() => void)[] = [];

  constructor(id: string, seq: number, logger: Logger) {
    this.id = id;
    this.seq = seq;
    this.#logger = logger;
  }

  get state(): RunnerState {
    return this.#state;
  }

  /** Why it left `ready` (the first reason given wins). */
  get reason(): string | undefined {
    return this.#reason;
  }

  /** True when placement may give it work (its load permitting). */
  get placeable(): boolean {
    return this.#state === 'ready';
  }

  /**
   * Applies `event`: moves to the state the table gives and returns true, or returns false (and
   * changes nothing) when the table refuses the event in the current state.
   */
  fire(event: RunnerEvent, reason?: string): boolean {
    const from = this.#state;
    const to = nextRunnerState(from, event);
    if (to === undefined) {
      this.#logger.debug(`runner ${this.id}: ${event} refused in state ${from}`);
      return false;
    }
    this.#state = to;
    if (reason !== undefined) this.#reason ??= reason;
    this.#logger.debug(`runner ${this.id}: ${from} -> ${to} (${event}${reason ? `: ${reason}` : ''})`);
    return true;
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
    return { id: this.id, node: this.node, state: this.#state, load: this.load, description: this.instance?.description };
  }
}
