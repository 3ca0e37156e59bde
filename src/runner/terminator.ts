/**
 * Decides when a runner ends. It stops the runner:
 * - when idle (no call, nothing placed) past `idleShutdownAfter`, once the parent agrees (the
 *   parent owns the load, so a checkout cannot race a dying runner, unlike FLAME);
 * - when its parent is gone: linked actors stop at once, calls drain, and the process is gone
 *   within `failsafeTimeout` (no orphan outlives its parent);
 * - on SIGTERM or a shutdown request, after draining in-flight calls within `shutdownTimeout`;
 * - after its one call, under `singleUse`.
 * Timers carry a token so a stale one is ignored.
 */
import type { Logger } from '../log.js';

/**
 * The runner's life, one way only: booting (joining the parent) -> running -> draining (no new
 * work, in-flight calls finish) -> exiting (children stopped, node closing). `drain` may skip
 * `running` (a boot that fails or is aborted), and a failsafe may jump to `exiting` from anywhere.
 */
export const TerminatorState = {
  booting: 'booting',
  running: 'running',
  draining: 'draining',
  exiting: 'exiting',
} as const;
export type TerminatorState = (typeof TerminatorState)[keyof typeof TerminatorState];

export interface TerminatorOptions {
  idleShutdownAfter: number;
  shutdownTimeout: number;
  failsafeTimeout: number;
  singleUse: boolean;
  logger: Logger;
  /** Asks the parent whether this runner may stop; false keeps it (or the parent is unreachable). */
  askParentToStop(): Promise<boolean>;
  /** Stops placed actors: all of them, or only those linked to the caller (parent loss). */
  stopChildren(onlyLinked: boolean): void;
  /** Ends the runner (closes the node, exits the process). Called once. */
  exit(reason: string, code: number): Promise<void> | void;
}

export class Terminator {
  readonly #o: TerminatorOptions;
  #state: TerminatorState = TerminatorState.booting;
  /** Why it is draining or exiting. */
  #reason: string | undefined;
  #calls = 0;
  #children = 0;
  #idleToken = 0;
  #idleTimer: NodeJS.Timeout | undefined;
  /** When the idle timer was armed, and when a call last started and ended within one turn. */
  #idleArmedAt = 0;
  #lastQuickCallAt = -Infinity;
  #failsafeTimer: NodeJS.Timeout | undefined;
  #drained: (() => void) | undefined;
  #exited: Promise<void> | undefined;

  constructor(options: TerminatorOptions) {
    this.#o = options;
  }

  get state(): TerminatorState {
    return this.#state;
  }

  /** Why the runner takes no new work, or undefined while it does. */
  get draining(): string | undefined {
    return this.#state === TerminatorState.draining || this.#state === TerminatorState.exiting ? this.#reason : undefined;
  }

  get calls(): number {
    return this.#calls;
  }

  /** booting -> running: the parent is joined; starts the idle clock. */
  start(): void {
    if (this.#state !== TerminatorState.booting) return;
    this.#state = TerminatorState.running;
    this.#armIdle();
  }

  callStarted(): void {
    this.#calls++;
    this.#cancelIdle();
  }

  /**
   * A call started and ended within one synchronous run (a function that returned a value):
   * the same as `callStarted(); callEnded()`, without clearing and re-arming the idle timer on
   * every call. The idle clock still counts from the last call (see {@link #armIdle}).
   */
  quickCall(): void {
    if (this.#o.singleUse) {
      this.callStarted();
      this.callEnded();
      return;
    }
    this.#lastQuickCallAt = performance.now();
  }

  callEnded(): void {
    this.#calls--;
    if (this.#o.singleUse && this.#state === TerminatorState.running) {
      void this.drain('single use: its call is done');
      return;
    }
    this.#settled();
  }

  childPlaced(): void {
    this.#children++;
    this.#cancelIdle();
  }

  childStopped(): void {
    this.#children--;
    this.#settled();
  }

  /** The parent's node went down: linked actors stop now; the rest drains, bounded by the failsafe. */
  parentLost(reason: string): void {
    if (this.#state === TerminatorState.exiting) return;
    this.#o.logger.warn(`parent lost (${reason}): draining, exiting within ${this.#o.failsafeTimeout} ms`);
    this.#o.stopChildren(true);
    this.#armFailsafe(`parent lost: ${reason}`);
    void this.drain(`parent lost: ${reason}`, Math.min(this.#o.shutdownTimeout, this.#o.failsafeTimeout));
  }

  /** Boot-time guard: exit if the parent is not reached within the failsafe timeout. */
  armFailsafe(reason: string): void {
    this.#armFailsafe(reason);
  }

  disarmFailsafe(): void {
    if (this.#failsafeTimer) clearTimeout(this.#failsafeTimer);
    this.#failsafeTimer = undefined;
  }

  /**
   * -> draining: refuses new work, waits for in-flight calls (at most `timeout` ms), stops placed
   * actors and exits. Idempotent: a second call keeps the first reason and returns once the
   * runner has exited.
   */
  async drain(reason: string, timeout = this.#o.shutdownTimeout, exitCode = 0): Promise<void> {
    if (this.#state === TerminatorState.booting || this.#state === TerminatorState.running) {
      this.#state = TerminatorState.draining;
      this.#reason = reason;
      this.#cancelIdle();
      this.#o.logger.info(`draining: ${reason}`);
    }
    if (this.#calls > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.#o.logger.warn(`${this.#calls} call(s) still running after ${timeout} ms: exiting anyway`);
          resolve();
        }, timeout);
        const previous = this.#drained;
        this.#drained = () => {
          previous?.();
          clearTimeout(timer);
          resolve();
        };
      });
    }
    await this.#exit(reason, exitCode);
  }

  #settled(): void {
    if (this.#calls === 0 && this.#drained) {
      const done = this.#drained;
      this.#drained = undefined;
      done();
    }
    this.#armIdle();
  }

  #armIdle(): void {
    if (this.#state !== TerminatorState.running || this.#calls > 0 || this.#children > 0 || this.#idleTimer) return;
    if (this.#o.idleShutdownAfter === Infinity) return;
    this.#armIdleIn(this.#o.idleShutdownAfter);
  }

  #armIdleIn(ms: number): void {
    const token = ++this.#idleToken;
    this.#idleArmedAt = performance.now();
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined;
      if (token !== this.#idleToken || this.#calls > 0 || this.#children > 0 || this.#state !== TerminatorState.running) return;
      if (this.#lastQuickCallAt >= this.#idleArmedAt) {
        // Calls ran meanwhile: idle counts from the last one.
        this.#armIdleIn(Math.max(1, this.#lastQuickCallAt + this.#o.idleShutdownAfter - performance.now()));
        return;
      }
      void this.#o.askParentToStop().then(
        (stop) => {
          if (token !== this.#idleToken || this.#state !== TerminatorState.running) return;
          if (stop && this.#calls === 0 && this.#children === 0) void this.drain('idle');
          else this.#armIdle();
        },
        () => this.#armIdle(),
      );
    }, ms);
    this.#idleTimer.unref();
  }

  #cancelIdle(): void {
    this.#idleToken++;
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
  }

  #armFailsafe(reason: string): void {
    if (this.#failsafeTimer || this.#state === TerminatorState.exiting) return;
    this.#failsafeTimer = setTimeout(() => {
      this.#o.logger.error(`failsafe: ${reason}; exiting`);
      void this.#exit(`failsafe: ${reason}`, 1);
    }, this.#o.failsafeTimeout);
  }

  /** -> exiting, once; every caller resolves when the runner has ended. */
  #exit(reason: string, code: number): Promise<void> {
    this.#exited ??= this.#end(reason, code);
    return this.#exited;
  }

  async #end(reason: string, code: number): Promise<void> {
    this.#state = TerminatorState.exiting;
    this.#reason ??= reason;
    this.#cancelIdle();
    this.disarmFailsafe();
    this.#o.stopChildren(false);
    // One turn lets the answer of the call that just ended be queued, and stopped actors run
    // their afterStop, before the node closes its links.
    await new Promise((resolve) => setImmediate(resolve));
    await this.#o.exit(reason, code);
  }
}
