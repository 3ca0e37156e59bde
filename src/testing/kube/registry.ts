/**
 * The API's semantics over the store, independent of HTTP: naming (`generateName`), each kind's
 * strategy (defaults, validation, update rules, grace period: see strategy.ts), admission,
 * optimistic concurrency, status subresources, graceful deletion with finalizers and propagation
 * policies, and namespaces that must exist. The HTTP layer, the kubelet and the controllers all
 * go through it, so they agree on what a change means.
 */
import { frozenJson } from './frozen-json.js';
import { applyPatch, type PatchType } from './patch.js';
import type { AdmissionPlugin } from './admission.js';
import { findResource, RESOURCES, type ResourceDefinition } from './resources.js';
import { parseFieldSelector, parseLabelSelector } from './selectors.js';
import { apiErrors, type StatusCause } from './status.js';
import type { ObjectStore } from './store.js';
import { apiVersionOf, nameCauses, nowSeconds, qualifiedKind, qualifiedResource, randomSuffix, type StrategyContext } from './strategy.js';
import type { KubeObject, StoredObject } from './types.js';

export interface ListOptions {
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continueToken?: string;
}

export interface ListResult {
  items: StoredObject[];
  resourceVersion: string;
  continueToken?: string;
  remainingItemCount?: number;
}

export type PropagationPolicy = 'Foreground' | 'Background' | 'Orphan';

export interface DeleteOptions {
  gracePeriodSeconds?: number;
  propagationPolicy?: PropagationPolicy;
  preconditions?: { uid?: string; resourceVersion?: string };
}

export interface DeleteResult {
  /** The object as it now is (deletion under way) or as it last was (removed). */
  object: StoredObject;
  removed: boolean;
}

export const FOREGROUND_FINALIZER = 'foregroundDeletion';

/** A continue token remembers where the previous page ended. */
function encodeContinue(afterKey: string, revision: string): string {
  return Buffer.from(JSON.stringify({ v: 'emulator/v1', rv: revision, start: afterKey })).toString('base64url');
}

function decodeContinue(token: string): string {
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { v?: string; start?: string };
    if (parsed.v === 'emulator/v1' && typeof parsed.start === 'string') return parsed.start;
  } catch {
    // refused below with the real server's words
  }
  throw apiErrors.badRequest('continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)');
}

function objectKey(object: StoredObject): string {
  return `${object.metadata.namespace ?? ''}/${object.metadata.name}`;
}

export function resourceOrThrow(name: string): ResourceDefinition {
  const definition = findResource(name);
  if (!definition) throw apiErrors.notFoundPath();
  return definition;
}

export class Registry implements StrategyContext {
  constructor(
    private readonly store: ObjectStore,
    private readonly admission: readonly AdmissionPlugin[] = [],
  ) {}

  get resourceVersion(): number {
    return this.store.resourceVersion;
  }

  find(resource: string, namespace: string, name: string): StoredObject | undefined {
    return this.store.get(resource, namespace, name);
  }

  items(resource: string, namespace?: string): StoredObject[] {
    return this.store.list(resource, namespace);
  }

  deleteQuietly(resource: string, namespace: string, name: string): void {
    if (!this.store.get(resource, namespace, name)) return;
    this.delete(resource, namespace, name, { propagationPolicy: 'Background' });
  }

  get(resource: string, namespace: string, name: string): StoredObject {
    const object = this.store.get(resource, namespace, name);
    if (!object) throw apiErrors.notFound(qualifiedResource(resourceOrThrow(resource)), name);
    return object;
  }

  /** Whether an object passes a list's selectors: watches filter their events with the same test. */
  matcher(resource: string, options: Pick<ListOptions, 'labelSelector' | 'fieldSelector'>): (object: KubeObject) => boolean {
    const definition = resourceOrThrow(resource);
    const labels = parseLabelSelector(options.labelSelector);
    const fields = parseFieldSelector(options.fieldSelector, Object.keys(definition.fields));
    return (object) => {
      if (!labels(object.metadata?.labels)) return false;
      const values: Record<string, string> = {};
      for (const [field, read] of Object.entries(definition.fields)) values[field] = read(object);
      return fields(values);
    };
  }

  list(resource: string, namespace: string | undefined, options: ListOptions = {}): ListResult {
    const matches = this.matcher(resource, options);
    let items = this.store.list(resource, namespace).filter(matches);
    const resourceVersion = String(this.store.resourceVersion);
    if (options.continueToken) {
      const start = decodeContinue(options.continueToken);
      items = items.filter((o) => objectKey(o) > start);
    }
    if (options.limit !== undefined && options.limit > 0 && items.length > options.limit) {
      const page = items.slice(0, options.limit);
      return {
        items: page,
        resourceVersion,
        continueToken: encodeContinue(objectKey(page[page.length - 1]!), resourceVersion),
        remainingItemCount: items.length - page.length,
      };
    }
    return { items, resourceVersion };
  }

  /** `owned`: `body` is a fresh object only the caller built (the event recorder's), checked without a copy. */
  create(resource: string, namespace: string, body: unknown, owned = false): StoredObject {
    const definition = resourceOrThrow(resource);
    const object = this.checkBody(definition, namespace, body, owned);
    const metadata = object.metadata!;
    if (!metadata.name) {
      if (!metadata.generateName) {
        throw apiErrors.invalid(qualifiedKind(definition), '', [
          { reason: 'FieldValueRequired', message: 'Required value: name or generateName is required', field: 'metadata.name' },
        ]);
      }
      metadata.name = `${metadata.generateName}${randomSuffix()}`;
    }
    for (const field of ['uid', 'resourceVersion', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds'] as const) {
      delete metadata[field];
    }
    if (definition.namespaced) this.requireNamespace(namespace, definition, metadata.name);
    definition.prepareForCreate?.(object, this);
    if (definition.tracksGeneration) metadata.generation = 1;
    const request = { operation: 'CREATE' as const, definition, namespace, object };
    for (const plugin of this.admission) plugin.admit?.(request, this);
    const causes = (definition.validate ?? nameCauses)(object);
    if (causes.length > 0) throw apiErrors.invalid(qualifiedKind(definition), metadata.name, causes);
    for (const plugin of this.admission) plugin.validate?.(request, this);
    if (this.store.get(resource, definition.namespaced ? namespace : '', metadata.name)) throw apiErrors.alreadyExists(qualifiedResource(definition), metadata.name);
    const stored = this.store.insert(resource, definition.namespaced ? namespace : '', object as KubeObject & { apiVersion: string; kind: string });
    definition.afterCreate?.(stored, this);
    return stored;
  }

  /** PUT: replaces the object (or, for `subresource: 'status'`, only its status). */
  update(resource: string, namespace: string, name: string, body: unknown, subresource?: string): StoredObject {
    const definition = resourceOrThrow(resource);
    const object = this.checkBody(definition, namespace, body);
    if (object.metadata?.name !== name) {
      throw apiErrors.badRequest(`the name of the object (${object.metadata?.name ?? ''}) does not match the name on the URL (${name})`);
    }
    const current = this.get(resource, namespace, name);
    const expected = object.metadata.resourceVersion;
    if (expected !== undefined && expected !== '' && expected !== current.metadata.resourceVersion) {
      throw apiErrors.conflict(qualifiedResource(definition), name, 'the object has been modified; please apply your changes to the latest version and try again');
    }
    return this.commit(definition, current, object, subresource);
  }

  patch(resource: string, namespace: string, name: string, type: PatchType, patch: unknown, subresource?: string): StoredObject {
    const definition = resourceOrThrow(resource);
    const current = this.get(resource, namespace, name);
    const patched = applyPatch(type, current, patch) as KubeObject;
    if (patched === null || typeof patched !== 'object' || Array.isArray(patched)) {
      throw apiErrors.badRequest('the patch did not produce an object');
    }
    const expected = patched.metadata?.resourceVersion;
    if (expected !== undefined && expected !== current.metadata.resourceVersion) {
      throw apiErrors.conflict(qualifiedResource(definition), name, 'the object has been modified; please apply your changes to the latest version and try again');
    }
    if (patched.metadata?.name !== name) {
      throw apiErrors.badRequest(`the name of the object (${String(patched.metadata?.name)}) does not match the name on the URL (${name})`);
    }
    return this.commit(definition, current, patched, subresource);
  }

  /**
   * Starts or completes a deletion. Pods that ran on a node get their grace period (the kubelet
   * finishes the deletion once the process is gone); an object with finalizers waits for them.
   */
  delete(resource: string, namespace: string, name: string, options: DeleteOptions = {}): DeleteResult {
    const definition = resourceOrThrow(resource);
    const current = this.get(resource, namespace, name);
    const { preconditions } = options;
    if (preconditions?.uid && preconditions.uid !== current.metadata.uid) {
      throw apiErrors.conflict(qualifiedResource(definition), name, `Precondition failed: UID in precondition: ${preconditions.uid}, UID in object meta: ${current.metadata.uid}`);
    }
    if (preconditions?.resourceVersion && preconditions.resourceVersion !== current.metadata.resourceVersion) {
      throw apiErrors.conflict(
        qualifiedResource(definition),
        name,
        `Precondition failed: ResourceVersion in precondition: ${preconditions.resourceVersion}, ResourceVersion in object meta: ${current.metadata.resourceVersion}`,
      );
    }
    if (options.gracePeriodSeconds !== undefined && (!Number.isInteger(options.gracePeriodSeconds) || options.gracePeriodSeconds < 0)) {
      throw apiErrors.badRequest(`gracePeriodSeconds must be a non-negative integer, got ${options.gracePeriodSeconds}`);
    }
    const policy = options.propagationPolicy ?? 'Background';
    if (!['Foreground', 'Background', 'Orphan'].includes(policy)) {
      throw apiErrors.badRequest(`propagationPolicy must be Foreground, Background or Orphan, got ${String(policy)}`);
    }
    if (policy === 'Orphan') this.orphanDependents(current.metadata.uid);
    if (definition.beginDelete) {
      definition.beginDelete(current, this);
      this.releaseNamespaceIfEmpty(name);
      const now = this.store.get(resource, namespace, name);
      return { object: now ?? current, removed: now === undefined };
    }

    const grace = definition.gracePeriod?.(current, options.gracePeriodSeconds) ?? 0;
    const finalizers = [...(current.metadata.finalizers ?? [])];
    if (policy === 'Foreground' && !finalizers.includes(FOREGROUND_FINALIZER) && this.store.dependentsOf(current.metadata.uid).length > 0) {
      finalizers.push(FOREGROUND_FINALIZER);
    }
    const deleting = current.metadata.deletionTimestamp !== undefined;
    const currentGrace = current.metadata.deletionGracePeriodSeconds ?? 0;
    if (deleting && grace >= currentGrace && finalizers.length === (current.metadata.finalizers ?? []).length) {
      return { object: current, removed: false };
    }
    if (grace === 0 && finalizers.length === 0) {
      if (definition.gracePeriod) {
        // kube-apiserver's graceful strategy (pods) writes the deletion mark even at grace 0, then
        // deletes: watchers see MODIFIED then DELETED, and the answer carries deletionTimestamp.
        const marked = structuredClone(current) as StoredObject;
        marked.metadata.deletionTimestamp = nowSeconds(0);
        marked.metadata.deletionGracePeriodSeconds = 0;
        this.store.replace(resource, namespace, marked);
      }
      return { object: this.store.remove(resource, namespace, name), removed: true };
    }
    const next = structuredClone(current) as StoredObject;
    next.metadata.deletionTimestamp = nowSeconds(grace);
    next.metadata.deletionGracePeriodSeconds = grace;
    next.metadata.finalizers = finalizers;
    return { object: this.store.replace(resource, namespace, next), removed: false };
  }

  deleteCollection(resource: string, namespace: string | undefined, list: ListOptions, options: DeleteOptions): StoredObject[] {
    return this.list(resource, namespace, list).items.map(
      (o) => this.delete(resource, o.metadata.namespace ?? '', o.metadata.name, options).object,
    );
  }

  /**
   * The kubelet's last word on a pod whose containers are gone: it goes away now, or as soon as
   * its finalizers are removed.
   */
  finishDeletion(resource: string, namespace: string, name: string): void {
    const current = this.store.get(resource, namespace, name);
    if (!current) return;
    if ((current.metadata.finalizers ?? []).length === 0) {
      this.store.remove(resource, namespace, name);
      return;
    }
    const next = structuredClone(current) as StoredObject;
    next.metadata.deletionTimestamp ??= nowSeconds();
    next.metadata.deletionGracePeriodSeconds = 0;
    this.store.replace(resource, namespace, next);
  }

  /** Server-side edits (kubelet status, garbage collector): a no-op once the object is gone. */
  mutate(resource: string, namespace: string, name: string, edit: (draft: StoredObject) => void): StoredObject | undefined {
    const current = this.store.get(resource, namespace, name);
    if (!current) return undefined;
    const draft = structuredClone(current) as StoredObject;
    edit(draft);
    if (JSON.stringify(draft) === frozenJson(current)) return current;
    return this.settle(resource, namespace, draft, true);
  }

  /**
   * A server-side edit of the status alone (the kubelet's): only the status is copied and compared,
   * the rest of the new revision shares the stored object's frozen parts. `edit` returns false to
   * leave the object as it is.
   */
  mutateStatus(resource: string, namespace: string, name: string, edit: (status: Record<string, unknown>, current: StoredObject) => boolean | void): StoredObject | undefined {
    const current = this.store.get(resource, namespace, name);
    if (!current) return undefined;
    const before = current.status as Record<string, unknown> | undefined;
    const status = before === undefined ? {} : structuredClone(before);
    if (edit(status, current) === false) return current;
    if (JSON.stringify(status) === frozenJson(before ?? {})) return current;
    return this.settle(resource, namespace, { ...current, metadata: { ...current.metadata }, status }, true);
  }

  /**
   * Creates a namespace unless it exists (for the cluster's own setup and test helpers; the API
   * itself refuses objects in a namespace that does not exist, as the real server does).
   */
  ensureNamespace(namespace: string): void {
    if (this.store.get('namespaces', '', namespace)) return;
    this.create('namespaces', '', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
  }

  /** The NamespaceLifecycle admission check: the namespace exists and is not being terminated. */
  private requireNamespace(namespace: string, definition: ResourceDefinition, name: string): void {
    const existing = this.store.get('namespaces', '', namespace);
    if (!existing) throw apiErrors.notFound('namespaces', namespace);
    if (existing.metadata.deletionTimestamp) {
      throw apiErrors.forbidden(qualifiedResource(definition), name, `unable to create new content in namespace ${namespace} because it is being terminated`);
    }
  }

  /** Common checks on a request body: a JSON object of the right kind, in the URL's namespace. */
  private checkBody(definition: ResourceDefinition, namespace: string, body: unknown, owned = false): KubeObject & { metadata: NonNullable<KubeObject['metadata']> } {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw apiErrors.badRequest('the request body must be a JSON object');
    }
    const object = (owned ? body : structuredClone(body)) as KubeObject;
    if (object.kind !== undefined && object.kind !== definition.kind) {
      throw apiErrors.badRequest(`the kind of the object (${String(object.kind)}) does not match the resource (${definition.name}, kind ${definition.kind})`);
    }
    const apiVersion = apiVersionOf(definition);
    if (object.apiVersion !== undefined && object.apiVersion !== apiVersion) {
      throw apiErrors.badRequest(`the API version in the data (${String(object.apiVersion)}) does not match the expected API version (${apiVersion})`);
    }
    object.kind = definition.kind;
    object.apiVersion = apiVersion;
    object.metadata = object.metadata && typeof object.metadata === 'object' ? object.metadata : {};
    if (definition.namespaced) {
      if (object.metadata.namespace && object.metadata.namespace !== namespace) {
        throw apiErrors.badRequest('the namespace of the provided object does not match the namespace sent on the request');
      }
      object.metadata.namespace = namespace;
    }
    return object as KubeObject & { metadata: NonNullable<KubeObject['metadata']> };
  }

  /** Applies an update's rules (what may change, status vs. main resource) and stores it. */
  private commit(definition: ResourceDefinition, current: StoredObject, incoming: KubeObject, subresource?: string): StoredObject {
    const namespace = current.metadata.namespace ?? '';
    let next: KubeObject;
    if (subresource === 'status') {
      next = { ...structuredClone(current), status: incoming.status };
    } else if (subresource) {
      throw apiErrors.methodNotAllowed();
    } else {
      next = structuredClone(incoming);
      if ('status' in current) next.status = structuredClone(current.status);
      const meta = next.metadata!;
      meta.deletionTimestamp = current.metadata.deletionTimestamp;
      meta.deletionGracePeriodSeconds = current.metadata.deletionGracePeriodSeconds;
      if (meta.deletionTimestamp === undefined) delete meta.deletionTimestamp;
      if (meta.deletionGracePeriodSeconds === undefined) delete meta.deletionGracePeriodSeconds;
      if (meta.namespace === undefined && current.metadata.namespace !== undefined) meta.namespace = current.metadata.namespace;
      definition.prepareForUpdate?.(next, current);
      if (definition.tracksGeneration) {
        const generation = current.metadata.generation ?? 1;
        meta.generation = JSON.stringify(next.spec) === JSON.stringify(current.spec) ? generation : generation + 1;
      }
      const causes = definition.validateUpdate ? definition.validateUpdate(next, current) : (definition.validate ?? nameCauses)(next);
      if (causes.length > 0) throw apiErrors.invalid(qualifiedKind(definition), current.metadata.name, causes);
    }
    if (JSON.stringify(stripVolatile(next)) === JSON.stringify(stripVolatile(current))) return current;
    return this.settle(definition.name, namespace, next);
  }

  /** Stores an edited object, or removes it when a deletion was only waiting for its finalizers. */
  /** `owned`: `next` is a copy only the caller held (see ObjectStore.replace). */
  private settle(resource: string, namespace: string, next: KubeObject, owned = false): StoredObject {
    const meta = next.metadata!;
    if (meta.deletionTimestamp && (meta.finalizers ?? []).length === 0 && (meta.deletionGracePeriodSeconds ?? 0) === 0) {
      return this.store.remove(resource, namespace, meta.name!);
    }
    return this.store.replace(resource, namespace, next, owned);
  }

  private orphanDependents(uid: string): void {
    for (const { resource, object } of this.store.dependentsOf(uid)) {
      this.mutate(resource, object.metadata.namespace ?? '', object.metadata.name, (draft) => {
        draft.metadata.ownerReferences = draft.metadata.ownerReferences?.filter((r) => r.uid !== uid);
        if (draft.metadata.ownerReferences?.length === 0) delete draft.metadata.ownerReferences;
      });
    }
  }

  /** Removes a terminating namespace once nothing is left in it. */
  releaseNamespaceIfEmpty(name: string): void {
    const namespace = this.store.get('namespaces', '', name);
    if (!namespace?.metadata.deletionTimestamp) return;
    const left = RESOURCES.some((d) => d.namespaced && this.store.list(d.name, name).length > 0);
    if (!left) this.store.remove('namespaces', '', name);
  }
}

/** An update that changes nothing but the sender's copy of these fields is not a change. */
function stripVolatile(object: KubeObject): KubeObject {
  const copy = structuredClone(object);
  if (copy.metadata) {
    delete copy.metadata.resourceVersion;
    delete copy.metadata.managedFields;
    delete copy.metadata.uid;
    delete copy.metadata.creationTimestamp;
  }
  return copy;
}
