/**
 * Actors that survive their runner: `placeChild(factory, args, { restart })`. The caller gets
 * the ref of a local proxy actor (on the pool's parent node) that forwards every message to the
 * current placement. When the placement's runner dies (crash, SIGKILL, eviction, the pool
 * draining it), the actor is placed again, from the same factory and arguments, on another
 * runner, and the proxy forwards to it: the caller's ref keeps working. With nact's
 * persistence (`spawnPersistent` in the factory, and a persistence engine shared by the runners:
 * see `usePersistence`), the new placement recovers the actor's state.
 *
 * While it moves, messages are queued in order, up to `maxQueued`, and delivered once it is
 * placed again; a message beyond that is dropped and reported to `onDropped` with
 * ActorUnavailableError (`reason: 'queue full'`). Restarts are limited like a supervisor's: more
 * than `maxRestarts` within `withinMs` (a failed placement counts as one) and it gives up:
 * `onGiveUp` gets ActorUnavailableError (`reason: 'gave up'`), queued messages are dropped (to
 * `onDropped`) and the proxy stops, so the ref behaves as a stopped nact actor. Stopping the
 * proxy (`stop(ref)`) stops the placed actor. An actor that stops on its own on a live runner
 * is not restarted (only its runner's death moves it).
 */
import { dispatch, spawn, stop as stopActor, type Ref } from 'nact';
import type { ClusterNode } from '../cluster/node.js';
import { backoffDelay, type BackoffPolicy } from '../backoff.js';
import { ActorUnavailableError, PoolStoppedError } from '../errors.js';
import type { Logger } from '../log.js';
import { OptionReader } from '../validate.js';

/** Backoff between failed placements of a restart. */
const PLACE_BACKOFF: BackoffPolicy = { baseMs: 100, maxMs: 5000 };

export interface RestartInfo {
  /** The proxy's name on the parent node. */
  actor: string;
  /** Restarts within the current window, this one included. */
  restarts: number;
  /** The node it runs on now. */
  node: string;
  /** Why it moved: how its previous runner went down. */
  reason: string;
}

/** `placeChild`'s `restart` option. */
export interface RestartOptions {
  /** Most restarts within `withinMs`; one more and it gives up. Default 3. */
  maxRestarts?: number;
  /** The window restarts are counted in, in ms. Default 60 000. */
  withinMs?: number;
  /** Messages kept while it moves; beyond, they are dropped (to `onDropped`). Default 1000. */
  maxQueued?: number;
  /** It was placed again. Errors are caught and logged. */
  onRestart?: (info: RestartInfo) => void;
  /** It gave up (restart limit, or the pool stopped). Errors are caught and logged. */
  onGiveUp?: (error: ActorUnavailableError) => void;
  /** A message could not be delivered (queue full, or gave up). Errors are caught and logged. */
  onDropped?: (message: unknown, error: ActorUnavailableError) => void;
}

export interface ResolvedRestartOptions {
  maxRestarts: number;
  withinMs: number;
  maxQueued: number;
  onRestart: ((info: RestartInfo) => void) | undefined;
  onGiveUp: ((error: ActorUnavailableError) => void) | undefined;
  onDropped: ((message: unknown, error: ActorUnavailableError) => void) | undefined;
}

export const RESTART_DEFAULTS = { maxRestarts: 3, withinMs: 60_000, maxQueued: 1000 } as const;

export function resolveRestartOptions(input: unknown): ResolvedRestartOptions {
  const r = new OptionReader('pool.placeChild restart', input, ['maxRestarts', 'withinMs', 'maxQueued', 'onRestart', 'onGiveUp', 'onDropped']);
  return {
    maxRestarts: r.int('maxRestarts', RESTART_DEFAULTS.maxRestarts, 0, 10_000),
    withinMs: r.ms('withinMs', RESTART_DEFAULTS.withinMs, { min: 1, allowInfinity: true }),
    maxQueued: r.int('maxQueued', RESTART_DEFAULTS.maxQueued, 0, 1_000_000),
    onRestart: r.fn('onRestart'),
    onGiveUp: r.fn('onGiveUp'),
    onDropped: r.fn('onDropped'),
  };
}

export interface RestartableContext {
  node: ClusterNode;
  logger: Logger;
  /** Places the actor (the factory, its arguments, the pool's timeout) and resolves to its ref. */
  place(): Promise<Ref<unknown>>;
  options: ResolvedRestartOptions;
}

type State = 'placed' | 'moving' | 'stopped';

let nextProxy = 1;

/** One restartable actor: its current placement, its queue while it moves, its restarts. */
class Restartable {
  readonly name = `restartable-${nextProxy++}`;
  readonly proxy: Ref<unknown>;
  readonly #c: RestartableContext;
  readonly #o: ResolvedRestartOptions;
  #state: State = 'placed';
  #current: Ref<unknown>;
  #unmonitor: () => void = () => {};
  #queue: unknown[] = [];
  /** When each restart of the current window happened (monotonic ms). */
  #restarts: number[] = [];

  constructor(context: RestartableContext, first: Ref<unknown>) {
    this.#c = context;
    this.#o = context.options;
    this.#current = first;
    // nact 7 messages carry their reply refs themselves (its typings have no sender): forwarded as they are.
    this.proxy = spawn(context.node.system, (state: undefined, message: unknown) => {
      this.#forward(message);
      return state;
    }, this.name, { afterStop: () => this.#stopped() });
    this.#watch();
  }

  #forward(message: unknown): void {
    if (this.#state === 'placed') {
      dispatch(this.#current, message);
    } else if (this.#state === 'moving' && this.#queue.length < this.#o.maxQueued) {
      this.#queue.push(message);
    } else {
      const why = this.#state === 'moving'
        ? new ActorUnavailableError(`${this.name} is moving to another runner and already holds ${this.#o.maxQueued} messages (maxQueued): this one was dropped`, {
          actor: this.name, reason: 'queue full', restarts: this.#restarts.length,
        })
        : this.#gaveUp();
      this.#hook('onDropped', () => this.#o.onDropped?.(message, why));
    }
  }

  #watch(): void {
    const node = (this.#current as unknown as { node?: unknown }).node;
    if (typeof node !== 'string') return;
    this.#unmonitor = this.#c.node.monitor(node, (reason) => void this.#move(reason.message));
  }

  /** Its runner went down: place it again, within the restart limit. */
  async #move(reason: string): Promise<void> {
    if (this.#state !== 'placed') return;
    this.#state = 'moving';
    this.#c.logger.warn(`${this.name}: its runner went down (${reason}); placing it again`);
    for (let attempt = 1; ; attempt++) {
      if (!this.#mayRestart()) return this.#giveUp(`more than ${this.#o.maxRestarts} restarts within ${this.#o.withinMs} ms; the last one because ${reason}`);
      let placed: Ref<unknown>;
      try {
        placed = await this.#c.place();
      } catch (error) {
        if (error instanceof PoolStoppedError) return this.#giveUp(`its pool stopped (${error.message})`);
        reason = `a placement failed: ${(error as Error).message}`;
        this.#c.logger.warn(`${this.name}: ${reason}`);
        await new Promise((resolve) => setTimeout(resolve, backoffDelay(PLACE_BACKOFF, attempt)));
        if (this.#state !== 'moving') return;
        continue;
      }
      if (this.#state !== 'moving') {
        // Stopped while it was being placed: the new placement goes too.
        stopActor(placed);
        return;
      }
      this.#current = placed;
      this.#state = 'placed';
      this.#watch();
      for (const message of this.#queue.splice(0)) dispatch(placed, message);
      const node = String((placed as unknown as { node?: unknown }).node);
      this.#c.logger.info(`${this.name}: placed again on ${node}`);
      this.#hook('onRestart', () => this.#o.onRestart?.({ actor: this.name, restarts: this.#restarts.length, node, reason }));
      return;
    }
  }

  /** Counts a restart; false past the limit. */
  #mayRestart(): boolean {
    const now = performance.now();
    this.#restarts = this.#restarts.filter((at) => now - at < this.#o.withinMs);
    if (this.#restarts.length >= this.#o.maxRestarts) return false;
    this.#restarts.push(now);
    return true;
  }

  #gaveUp(): ActorUnavailableError {
    return new ActorUnavailableError(`${this.name} gave up and takes no messages`, { actor: this.name, reason: 'gave up', restarts: this.#restarts.length });
  }

  #giveUp(why: string): void {
    const error = new ActorUnavailableError(`${this.name} gave up: ${why}`, { actor: this.name, reason: 'gave up', restarts: this.#restarts.length });
    this.#c.logger.warn(error.message);
    this.#state = 'stopped';
    for (const message of this.#queue.splice(0)) this.#hook('onDropped', () => this.#o.onDropped?.(message, error));
    this.#hook('onGiveUp', () => this.#o.onGiveUp?.(error));
    stopActor(this.proxy);
  }

  /** The proxy stopped (the caller stopped it, or it gave up): the placement goes with it. */
  #stopped(): void {
    const wasPlaced = this.#state === 'placed';
    this.#state = 'stopped';
    this.#unmonitor();
    if (wasPlaced) stopActor(this.#current);
  }

  /** User callbacks never take the proxy down. */
  #hook(name: string, run: () => void): void {
    try {
      run();
    } catch (error) {
      this.#c.logger.error(`${this.name}: ${name} threw (ignored): ${(error as Error)?.message}`);
    }
  }
}

/** Places a restartable actor and resolves to its proxy's ref (the first placement's errors reject). */
export async function placeRestartable(context: RestartableContext): Promise<Ref<unknown>> {
  const first = await context.place();
  return new Restartable(context, first).proxy;
}
