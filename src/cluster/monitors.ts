/**
 * Monitors of remote nodes: who wants to hear, once, that a node went down. The node owns one
 * Monitors and tells it when a link that was up goes down; a monitor set on a node that is not
 * connected hears at once (in a microtask), as Erlang's `monitor/2` of a dead process does.
 */
import { NodeDownError } from '../errors.js';

type Watcher = (reason: Error) => void;

export class Monitors {
  /** The watchers of each node name; a name goes when its last watcher does. */
  readonly #byNode = new Map<string, Set<Watcher>>();

  /**
   * Calls `onDown(reason)` once when `node` goes down, or soon with NodeDownError when it is not
   * `connected` now. Returns a function that cancels the monitor (idempotent).
   */
  watch(node: string, connected: boolean, onDown: (reason: Error) => void): () => void {
    let active = true;
    const watcher: Watcher = (reason) => {
      if (!active) return;
      cancel();
      onDown(reason);
    };
    const cancel = (): void => {
      active = false;
      const set = this.#byNode.get(node);
      set?.delete(watcher);
      if (set?.size === 0) this.#byNode.delete(node);
    };
    if (!connected) {
      queueMicrotask(() => watcher(new NodeDownError(`node ${node} is not connected`, { details: { node } })));
    } else {
      const set = this.#byNode.get(node) ?? new Set();
      set.add(watcher);
      this.#byNode.set(node, set);
    }
    return cancel;
  }

  /** `node`'s link went down: each of its watchers hears `reason`, once. */
  nodeDown(node: string, reason: Error): void {
    const set = this.#byNode.get(node);
    // A copy: a watcher cancels itself (and may set new monitors) while this loop runs.
    if (set) for (const watcher of [...set]) watcher(reason);
  }
}
