/**
 * The few nact internals the cluster layer relies on, typed in one place.
 * nact 7.6.2 is frozen and CJS without an exports map, so these deep imports are stable;
 * they let remote refs resolve through nact's own `dispatch`/`query`/`stop`: nact looks a ref up
 * with `systemMap.find(ref.system.name, ref)`, so a system registered under a ref's system name
 * decides where its messages go.
 */
import { createRequire } from 'node:module';
import { ActorNotFoundError } from '../errors.js';
import { describe } from './wire.js';

const require = createRequire(import.meta.url);

/** What nact's `systemMap.find` must return for `dispatch`, `query` and `stop` to work on a ref. */
export interface ConcreteActor {
  dispatch(message: unknown, sender?: unknown): void;
  query?(message: unknown, timeout: number): Promise<unknown>;
  stop?(): void;
}

/** A system registered in nact's module-level map: nact asks it to resolve refs of its name. */
export interface RegisteredSystem {
  name: string;
  find(reference: unknown): ConcreteActor | undefined;
}

interface SystemMap {
  add(system: RegisteredSystem): void;
  find(systemName: string, reference?: unknown): ConcreteActor | undefined;
  remove(systemName: string): void;
}

/** The shape of nact's reference objects: plain data (type, system name, path parts, temp id), so a decoded copy routes like the original. */
export interface NactRefShape {
  type: string;
  system: { name: string | undefined };
  path?: { parts: string[]; system?: string };
  name?: string;
  id?: number;
}

type RefClass<A extends unknown[]> = new (...args: A) => NactRefShape;

interface References {
  Nobody: RefClass<[]>;
  TemporaryReference: RefClass<[string]>;
  ActorReference: RefClass<[string, unknown, { parts: string[]; system: string }, string]>;
  ActorSystemReference: RefClass<[string, { parts: string[]; system: string }]>;
}

interface Paths {
  ActorPath: new (parts: string[], system: string) => { parts: string[]; system: string };
}

export const systemMap: SystemMap = require('nact/lib/system-map.js') as SystemMap;
export const references: References = require('nact/lib/references.js') as References;
const paths: Paths = require('nact/lib/paths.js') as Paths;

/** A ref to an actor of a local nact system, as nact itself builds it. */
export function localActorRef(systemName: string, parts: string[]): NactRefShape {
  const path = new paths.ActorPath(parts, systemName);
  return new references.ActorReference(systemName, undefined, path, parts[parts.length - 1] ?? systemName);
}

/** A ref to a local nact system itself (the parent of top-level actors). */
export function localSystemRef(systemName: string): NactRefShape {
  return new references.ActorSystemReference(systemName, new paths.ActorPath([], systemName));
}

/** A ref to a pending local nact `query` (its temporary reply address). */
export function localTempRef(systemName: string, id: number): NactRefShape {
  const ref = new references.TemporaryReference(systemName);
  ref.id = id;
  return ref;
}

/**
 * Calls `onStopped(childName)` whenever a child of the local actor `parent` stops. nact has no
 * monitors; its parents are told through `childStopped`, which this wraps on the concrete actor.
 */
export function watchChildren(systemName: string, parent: unknown, onStopped: (childName: string) => void): void {
  const actor = systemMap.find(systemName, parent) as unknown as { childStopped(child: { name: string }): void } | undefined;
  if (!actor || typeof actor.childStopped !== 'function') {
    throw new ActorNotFoundError(`watchChildren: no local actor ${describe(parent)} on ${systemName}`, { details: { system: systemName } });
  }
  const original = actor.childStopped.bind(actor);
  actor.childStopped = (child) => {
    original(child);
    onStopped(child.name);
  };
}

/** The names of the current children of a local actor. */
export function childNames(systemName: string, parent: unknown): string[] {
  const actor = systemMap.find(systemName, parent) as unknown as { children?: Map<string, unknown> } | undefined;
  return actor?.children ? [...actor.children.keys()] : [];
}
