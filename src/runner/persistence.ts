/**
 * nact persistence for placed actors. nact reads the persistence engine of `spawnPersistent`
 * from the actor system, which nact's `start(configurePersistence(engine))` sets; a runner's
 * system is started by the runner itself, so a factory sets the engine on it with
 * {@link usePersistence} before spawning. Runners that may take over an actor from another one
 * must share the engine's storage (a database, a shared volume).
 */
import type { PersistenceEngine, Ref } from 'nact';
import { systemMap } from '../cluster/nact-internals.js';
import { InvalidOptionError } from '../errors.js';

/**
 * Sets `engine` as the persistence engine of the actor system `ref` belongs to (the parent ref a
 * `placeChild` factory gets), as `configurePersistence(engine)` does at nact's `start`:
 *
 * ```ts
 * export function counter(parent: Ref<never>, key: string) {
 *   usePersistence(parent, journal);
 *   return spawnPersistent(parent, (count, msg, ctx) => ..., key, `counter-${key}`);
 * }
 * ```
 */
export function usePersistence(ref: Ref<unknown>, engine: PersistenceEngine): void {
  const name = (ref as unknown as { system?: { name?: unknown } })?.system?.name;
  const system = typeof name === 'string' ? systemMap.find(name) : undefined;
  if (!system) {
    throw new InvalidOptionError('usePersistence: the ref must be a live actor of this process (the parent ref a placeChild factory gets)', {
      option: 'ref', expected: 'a local nact ref',
    });
  }
  if (typeof engine?.persist !== 'function' || typeof engine.events !== 'function' || typeof engine.latestSnapshot !== 'function') {
    throw new InvalidOptionError('usePersistence: the engine must implement events, persist, latestSnapshot and takeSnapshot (nact\'s PersistenceEngine)', {
      option: 'engine', expected: 'a nact PersistenceEngine',
    });
  }
  Object.assign(system, { persistenceEngine: engine });
}
