/**
 * The garbage collector: an object whose owners (`metadata.ownerReferences`) are all gone is
 * deleted, so runner pods die with the pod that owns them. Foreground deletion (the owner waits,
 * with the `foregroundDeletion` finalizer, until its dependents are gone) and the namespace
 * controller's last step (a terminating namespace disappears once empty) live here too.
 *
 * Owners of kinds the emulator does not serve (StatefulSets, Jobs...) are taken to exist, since
 * nothing here could tell otherwise; served kinds (Deployments, ReplicaSets, pods) are looked up.
 */
import { FOREGROUND_FINALIZER, type Registry } from './registry.js';
import { resourceOfKind } from './resources.js';
import type { ObjectStore, StoreChange } from './store.js';
import type { OwnerReference, StoredObject } from './types.js';

export class GarbageCollector {
  private readonly unsubscribe: () => void;
  private stopped = false;

  constructor(
    private readonly store: ObjectStore,
    private readonly registry: Registry,
  ) {
    this.unsubscribe = store.subscribe((change) => {
      // Collection runs after the change that caused it, as an asynchronous controller would.
      queueMicrotask(() => {
        if (!this.stopped) this.onChange(change);
      });
    });
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe();
  }

  private onChange(change: StoreChange): void {
    const object = change.object;
    if (change.type === 'DELETED') {
      this.collectDependentsOf(object.metadata.uid);
      for (const ref of object.metadata.ownerReferences ?? []) this.releaseForegroundOwner(ref.uid);
      if (change.namespace) this.registry.releaseNamespaceIfEmpty(change.namespace);
      return;
    }
    if (object.metadata.deletionTimestamp && object.metadata.finalizers?.includes(FOREGROUND_FINALIZER)) {
      for (const { resource, object: dependent } of this.store.dependentsOf(object.metadata.uid)) {
        if (!dependent.metadata.deletionTimestamp) this.deleteQuietly(resource, dependent);
      }
      this.releaseForegroundOwner(object.metadata.uid);
    }
    if (change.type === 'ADDED' && (object.metadata.ownerReferences ?? []).length > 0 && !this.hasLivingOwner(object)) {
      this.deleteQuietly(change.resource, object);
    }
  }

  private collectDependentsOf(uid: string): void {
    for (const { resource, object } of this.store.dependentsOf(uid)) {
      if (!this.hasLivingOwner(object) && !object.metadata.deletionTimestamp) this.deleteQuietly(resource, object);
    }
  }

  /** Lifts `foregroundDeletion` from an owner once none of its dependents is left. */
  private releaseForegroundOwner(uid: string): void {
    const owner = this.store.findByUid(uid);
    if (!owner?.object.metadata.finalizers?.includes(FOREGROUND_FINALIZER)) return;
    if (this.store.dependentsOf(uid).length > 0) return;
    this.registry.mutate(owner.resource, owner.object.metadata.namespace ?? '', owner.object.metadata.name, (draft) => {
      draft.metadata.finalizers = draft.metadata.finalizers?.filter((f) => f !== FOREGROUND_FINALIZER);
    });
  }

  private hasLivingOwner(object: StoredObject): boolean {
    return (object.metadata.ownerReferences ?? []).some((ref) => this.ownerExists(ref, object.metadata.namespace));
  }

  private ownerExists(ref: OwnerReference, namespace: string | undefined): boolean {
    const definition = resourceOfKind(ref.kind);
    if (!definition) return true;
    const owner = this.store.get(definition.name, definition.namespaced ? (namespace ?? '') : '', ref.name);
    return owner !== undefined && owner.metadata.uid === ref.uid;
  }

  private deleteQuietly(resource: string, object: StoredObject): void {
    try {
      this.registry.delete(resource, object.metadata.namespace ?? '', object.metadata.name, { propagationPolicy: 'Background' });
    } catch {
      // deleted meanwhile
    }
  }
}
