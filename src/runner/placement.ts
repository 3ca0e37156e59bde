/**
 * The actors placed on a runner (`pool.placeChild`): they live under one supervisor actor, so
 * the runner learns when each one stops, tells the parent (its slot is free) and the terminator.
 */
import { spawn, stop as stopActor, type Ref } from 'nact';
import type { ClusterNode } from '../cluster/node.js';
import { childNames, watchChildren } from '../cluster/nact-internals.js';
import { ModuleRefError } from '../errors.js';

interface PlacedChild {
  ref: Ref<unknown>;
  /** Stops when the caller's node goes down. */
  link: boolean;
}

export interface PlacementEvents {
  /** A placed actor stopped (for whatever reason). */
  stopped(child: number): void;
}

export class PlacedActors {
  /** The supervisor the factories spawn under (their first argument). */
  readonly parent: Ref<unknown>;
  readonly #node: ClusterNode;
  readonly #byId = new Map<number, PlacedChild>();
  readonly #idByName = new Map<string, number>();
  #nextId = 1;

  constructor(node: ClusterNode, events: PlacementEvents) {
    this.#node = node;
    this.parent = spawn(node.system, (s: undefined) => s, 'placed', { onCrash: (_m, _e, ctx) => ctx.stopChild });
    watchChildren(node.name, this.parent, (name) => {
      const id = this.#idByName.get(name);
      if (id === undefined) return;
      this.#idByName.delete(name);
      this.#byId.delete(id);
      events.stopped(id);
    });
  }

  /**
   * Runs `factory(parent, ...args)` and records the actor it spawned under `parent`; refuses a
   * factory that spawned elsewhere or returned something else. Resolves to the child's id.
   */
  async place(factory: (...args: unknown[]) => unknown, args: unknown[], link: boolean): Promise<{ ref: Ref<unknown>; child: number }> {
    const before = new Set(childNames(this.#node.name, this.parent));
    const ref = (await factory(this.parent, ...args)) as Ref<unknown> & { name?: unknown };
    const name = ref?.name;
    if (typeof name !== 'string' || before.has(name) || !childNames(this.#node.name, this.parent).includes(name)) {
      throw new ModuleRefError('placeChild: the factory must spawn the actor under the parent ref it is given (its first argument) and return its ref');
    }
    const child = this.#nextId++;
    this.#byId.set(child, { ref, link });
    this.#idByName.set(name, child);
    return { ref, child };
  }

  /** Stops every placed actor, or only those linked to their caller. */
  stopAll(onlyLinked: boolean): void {
    for (const child of this.#byId.values()) {
      if (onlyLinked && !child.link) continue;
      try {
        stopActor(child.ref);
      } catch {
        // already stopped
      }
    }
  }
}
