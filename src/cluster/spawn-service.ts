/**
 * The `flame.spawn` service every node serves: a peer names a module export
 * `(parentRef, ...args) => ActorRef`; this node loads the module its own way (`NodeOptions.loadModule`,
 * so that the app's resolution rules apply), calls the export with its actor system as the parent
 * and answers the ref. Anything the peer sends is checked before use, and each failure is a typed
 * error that names the module and the node.
 */
import type { Ref } from 'nact';
import { ModuleRefError, ProtocolError } from '../errors.js';

/** The request service name. */
export const SPAWN_SERVICE = 'flame.spawn';

/** What the service needs of its node. */
export interface SpawnHost {
  readonly name: string;
  readonly system: Ref<never>;
  loadModule(url: string): Promise<Record<string, unknown>>;
}

export async function spawnFromModule(host: SpawnHost, payload: unknown): Promise<unknown> {
  const p = payload as { module?: unknown; export?: unknown; args?: unknown };
  if (typeof p?.module !== 'string' || typeof p.export !== 'string' || !Array.isArray(p.args)) {
    throw new ProtocolError('spawn needs { module, export, args }');
  }
  let mod: Record<string, unknown>;
  try {
    mod = await host.loadModule(p.module);
  } catch (e) {
    throw new ModuleRefError(`cannot load module ${p.module} on ${host.name}: ${(e as Error).message}`, { cause: e });
  }
  const factory = mod[p.export];
  if (typeof factory !== 'function') {
    throw new ModuleRefError(`module ${p.module} has no exported function "${p.export}" on ${host.name}`);
  }
  const ref = await (factory as (parent: unknown, ...args: unknown[]) => unknown)(host.system, ...p.args);
  if (typeof ref !== 'object' || ref === null || (ref as { type?: unknown }).type !== 'actor') {
    throw new ModuleRefError(`${p.export}() of ${p.module} must return the ActorRef it spawned`);
  }
  return ref;
}
