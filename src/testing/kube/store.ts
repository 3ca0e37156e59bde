/**
 * The emulator's etcd: objects by resource/namespace/name, one global revision counter that
 * becomes every object's `resourceVersion`, and a bounded history of changes that watches replay
 * from. Changes older than the kept window are "compacted": a watch asking for them gets 410.
 *
 * Stored objects are deep-frozen: everything outside must copy before editing, so nobody can
 * change an object behind the revision counter's back.
 */
import { randomUUID } from 'node:crypto';
import { apiErrors } from './status.js';
import type { KubeObject, StoredObject, WatchEventType } from './types.js';

export interface StoreChange {
  type: WatchEventType;
  resource: string;
  namespace: string;
  /** The object after the change (for DELETED: its last state, with the deletion's revision). */
  object: StoredObject;
  /** The object before the change, so that selector-filtered watches can see objects leave. */
  previous: StoredObject | undefined;
  revision: number;
}

export type StoreListener = (change: StoreChange) => void;

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value as object)) deepFreeze(child);
  }
  return value;
}

function keyOf(resource: string, namespace: string, name: string): string {
  return `${resource}/${namespace}/${name}`;
}

/** The order lists come back in (`localeCompare` of `namespace/name`), without its per-call setup. */
const collator = new Intl.Collator();

export class ObjectStore {
  private readonly objects = new Map<string, StoredObject>();
  /** The same objects by resource, then `namespace/name`: lists (and so RBAC lookups) need not scan everything. */
  private readonly byResource = new Map<string, Map<string, StoredObject>>();
  /**
   * Each resource's `namespace/name` keys in list order, kept until an object of that resource
   * comes or goes: every request's RBAC check lists the bindings, and sorting them each time
   * stalled GETs while pods were being created.
   */
  private readonly sortedKeys = new Map<string, string[]>();
  /**
   * Keys by uid, and the keys of each owner's dependents: the garbage collector looks both up on
   * every deletion, and scanning every object each time (events are pruned one per new event)
   * grew with the square of the object count.
   */
  private readonly keyByUid = new Map<string, string>();
  private readonly dependents = new Map<string, Set<string>>();
  private readonly history: StoreChange[] = [];
  private revision = 0;
  private compactedRevision = 0;
  private readonly listeners = new Set<StoreListener>();
  private readonly pending: StoreChange[] = [];
  private dispatching = false;

  constructor(private readonly historyLimit: number) {
    if (!Number.isInteger(historyLimit) || historyLimit < 1) {
      throw new RangeError(`historyLimit must be a positive integer, got ${historyLimit}`);
    }
  }

  /** The latest revision: what a list returns as its `resourceVersion`. */
  get resourceVersion(): number {
    return this.revision;
  }

  /** The oldest revision a watch may still start from. */
  get oldestWatchableRevision(): number {
    return this.compactedRevision;
  }

  get(resource: string, namespace: string, name: string): StoredObject | undefined {
    return this.objects.get(keyOf(resource, namespace, name));
  }

  /** Objects of one resource, in one namespace or (namespace undefined) all, sorted like the real server. */
  list(resource: string, namespace?: string): StoredObject[] {
    const ofResource = this.byResource.get(resource);
    if (!ofResource) return [];
    let keys = this.sortedKeys.get(resource);
    if (!keys) this.sortedKeys.set(resource, (keys = [...ofResource.keys()].sort(collator.compare)));
    const prefix = namespace === undefined ? '' : `${namespace}/`;
    const found: StoredObject[] = [];
    for (const key of keys) if (key.startsWith(prefix)) found.push(ofResource.get(key)!);
    return found;
  }

  /** Finds any object by uid (the garbage collector's owner lookup). */
  findByUid(uid: string): { resource: string; object: StoredObject } | undefined {
    const key = this.keyByUid.get(uid);
    const object = key === undefined ? undefined : this.objects.get(key);
    return object && { resource: key!.slice(0, key!.indexOf('/')), object };
  }

  /** All objects that name `uid` among their owners. */
  dependentsOf(uid: string): { resource: string; object: StoredObject }[] {
    const found: { resource: string; object: StoredObject }[] = [];
    for (const key of this.dependents.get(uid) ?? []) {
      const object = this.objects.get(key);
      if (object) found.push({ resource: key.slice(0, key.indexOf('/')), object });
    }
    return found;
  }

  /** Stores a new object; `metadata.name` must be set. Fills uid, creationTimestamp, resourceVersion. */
  insert(resource: string, namespace: string, object: KubeObject & { apiVersion: string; kind: string }): StoredObject {
    const name = object.metadata?.name;
    if (!name) throw new Error('store: insert needs metadata.name');
    const key = keyOf(resource, namespace, name);
    if (this.objects.has(key)) throw apiErrors.alreadyExists(resource, name);
    const revision = ++this.revision;
    const metadata = {
      ...object.metadata,
      name,
      uid: randomUUID(),
      resourceVersion: String(revision),
      creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    };
    if (namespace) (metadata as { namespace?: string }).namespace = namespace;
    else delete (metadata as { namespace?: string }).namespace;
    const stored = deepFreeze(structuredClone({ ...object, metadata })) as StoredObject;
    this.put(resource, namespace, name, stored);
    this.record({ type: 'ADDED', resource, namespace, object: stored, previous: undefined, revision });
    return stored;
  }

  /**
   * Replaces an existing object; identity fields (uid, creationTimestamp) cannot change here.
   * `owned`: the caller hands over a fresh copy nobody else holds, stored without copying it again
   * (the kubelet's status updates, hundreds a second while pods start, each paid a second deep copy).
   */
  replace(resource: string, namespace: string, object: KubeObject, owned = false): StoredObject {
    const name = object.metadata?.name ?? '';
    const key = keyOf(resource, namespace, name);
    const previous = this.objects.get(key);
    if (!previous) throw apiErrors.notFound(resource, name);
    const revision = ++this.revision;
    const metadata = {
      ...object.metadata,
      name,
      uid: previous.metadata.uid,
      creationTimestamp: previous.metadata.creationTimestamp,
      resourceVersion: String(revision),
    };
    const stored = deepFreeze(owned ? Object.assign(object, { metadata }) : structuredClone({ ...object, metadata })) as StoredObject;
    this.put(resource, namespace, name, stored);
    this.record({ type: 'MODIFIED', resource, namespace, object: stored, previous, revision });
    return stored;
  }

  remove(resource: string, namespace: string, name: string): StoredObject {
    const key = keyOf(resource, namespace, name);
    const previous = this.objects.get(key);
    if (!previous) throw apiErrors.notFound(resource, name);
    this.objects.delete(key);
    this.keyByUid.delete(previous.metadata.uid);
    this.unindexOwners(key, previous);
    this.byResource.get(resource)?.delete(`${namespace}/${name}`);
    this.sortedKeys.delete(resource);
    const revision = ++this.revision;
    const last = deepFreeze(
      structuredClone({ ...previous, metadata: { ...previous.metadata, resourceVersion: String(revision) } }),
    ) as StoredObject;
    this.record({ type: 'DELETED', resource, namespace, object: last, previous, revision });
    return last;
  }

  /**
   * Changes after `revision`, oldest first. Throws 410 Expired when some of them were compacted
   * away, with the real server's message, so the client knows to relist.
   */
  changesSince(revision: number): StoreChange[] {
    if (revision < this.compactedRevision) {
      throw apiErrors.expired(`too old resource version: ${revision} (${this.compactedRevision})`);
    }
    return this.history.filter((c) => c.revision > revision);
  }

  /** Forgets all history, as an etcd compaction does: every older revision becomes too old to watch from. */
  compact(): void {
    this.history.length = 0;
    this.compactedRevision = this.revision;
  }

  subscribe(listener: StoreListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private put(resource: string, namespace: string, name: string, object: StoredObject): void {
    const fullKey = keyOf(resource, namespace, name);
    const previous = this.objects.get(fullKey);
    if (previous?.metadata.ownerReferences !== object.metadata.ownerReferences) {
      this.unindexOwners(fullKey, previous);
      for (const ref of object.metadata.ownerReferences ?? []) {
        let keys = this.dependents.get(ref.uid);
        if (!keys) this.dependents.set(ref.uid, (keys = new Set()));
        keys.add(fullKey);
      }
    }
    this.keyByUid.set(object.metadata.uid, fullKey);
    this.objects.set(fullKey, object);
    let ofResource = this.byResource.get(resource);
    if (!ofResource) this.byResource.set(resource, (ofResource = new Map()));
    const key = `${namespace}/${name}`;
    if (!ofResource.has(key)) this.sortedKeys.delete(resource);
    ofResource.set(key, object);
  }

  private unindexOwners(fullKey: string, object: StoredObject | undefined): void {
    for (const ref of object?.metadata.ownerReferences ?? []) {
      const keys = this.dependents.get(ref.uid);
      keys?.delete(fullKey);
      if (keys?.size === 0) this.dependents.delete(ref.uid);
    }
  }

  private record(change: StoreChange): void {
    this.history.push(change);
    while (this.history.length > this.historyLimit) {
      const dropped = this.history.shift()!;
      this.compactedRevision = dropped.revision;
    }
    // Listeners may change the store while being told of a change; queueing keeps every listener
    // seeing changes in revision order.
    this.pending.push(change);
    if (this.dispatching) return;
    this.dispatching = true;
    try {
      for (let next = this.pending.shift(); next; next = this.pending.shift()) {
        for (const listener of [...this.listeners]) {
          try {
            listener(next);
          } catch (error) {
            process.emitWarning(`emulated cluster: a store listener failed: ${String(error)}`);
          }
        }
      }
    } finally {
      this.dispatching = false;
    }
  }
}
