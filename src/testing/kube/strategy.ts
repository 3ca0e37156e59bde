/**
 * What a served kind is and how the API treats it, in one object per kind (kube-apiserver's
 * "REST strategy"): its discovery entry and field selectors, its defaults on create, its
 * validation, what an update may change, its status subresource and how long a deletion takes.
 * The registry applies these hooks and never asks which kind it holds, so adding a kind is one
 * definition in `kinds/` and one line in `resources.ts`.
 */
import { randomBytes } from 'node:crypto';
import type { StatusCause } from './status.js';
import type { KubeObject, StoredObject, Verb } from './types.js';

/** What a strategy may read or do in the cluster (the registry implements it). */
export interface StrategyContext {
  find(resource: string, namespace: string, name: string): StoredObject | undefined;
  /** Objects of a resource in one namespace, or in all when undefined. */
  items(resource: string, namespace?: string): StoredObject[];
  /** Creates an object as a client would (defaults, admission, validation). */
  create(resource: string, namespace: string, body: KubeObject): StoredObject;
  /** Starts the deletion of an object (as a Background DELETE); a no-op when already gone. */
  deleteQuietly(resource: string, namespace: string, name: string): void;
  /** Edits an object in place (server side), a no-op when it is gone. */
  mutate(resource: string, namespace: string, name: string, edit: (draft: StoredObject) => void): StoredObject | undefined;
}

export interface ResourceDefinition {
  /** API group ('' for the core group). */
  group: string;
  version: string;
  /** Plural name as in URLs and RBAC rules ("pods"): unique among the served kinds. */
  name: string;
  singularName: string;
  kind: string;
  namespaced: boolean;
  shortNames: string[];
  /** Discovery categories (`all` makes `kubectl get all` list the kind). */
  categories?: string[];
  verbs: Verb[];
  /** Subresources served, with their verbs (for discovery and RBAC). */
  subresources: Record<string, Verb[]>;
  /** Field-selector labels and how to read each from an object. */
  fields: Record<string, (object: KubeObject) => string>;
  /** Asked, never stored (access reviews): the API server answers a create itself. */
  virtual?: boolean;
  /** Whether spec changes raise `metadata.generation` (kinds that a controller acts on). */
  tracksGeneration?: boolean;
  /** Defaults and server-set fields of a new object (PrepareForCreate and the defaulting funcs). */
  prepareForCreate?(object: KubeObject, ctx: StrategyContext): void;
  /** Why a new object is invalid (422); empty when it is fine. Default: the name must be a DNS subdomain. */
  validate?(object: KubeObject): StatusCause[];
  /** Server-side edits of an update of the main resource (e.g. Secret `stringData` folded in). */
  prepareForUpdate?(next: KubeObject, current: StoredObject): void;
  /** Why an update is refused (422). Default: {@link validate} of the new object. */
  validateUpdate?(next: KubeObject, current: StoredObject): StatusCause[];
  /** Work after a create, as the controllers that react at once do (a namespace's default account). */
  afterCreate?(object: StoredObject, ctx: StrategyContext): void;
  /** The grace period of a deletion (default 0: removed at once once finalizers allow). */
  gracePeriod?(object: StoredObject, requested: number | undefined): number;
  /** A deletion that is more than a timestamp (a namespace: Terminating, then its content goes). */
  beginDelete?(object: StoredObject, ctx: StrategyContext): void;
  /** What DELETE answers when the object is removed at once: the object (default) or a `Status`. */
  deleteReturnsStatus?: boolean;
}

export function apiVersionOf(definition: Pick<ResourceDefinition, 'group' | 'version'>): string {
  return definition.group ? `${definition.group}/${definition.version}` : definition.version;
}

/** `deployments.apps`: how error messages name a resource outside the core group. */
export function qualifiedResource(definition: Pick<ResourceDefinition, 'group' | 'name'>): string {
  return definition.group ? `${definition.name}.${definition.group}` : definition.name;
}

/** `Deployment.apps`: how 422 messages name a kind outside the core group. */
export function qualifiedKind(definition: Pick<ResourceDefinition, 'group' | 'kind'>): string {
  return definition.group ? `${definition.kind}.${definition.group}` : definition.kind;
}

export const ALL_VERBS: Verb[] = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export const subdomainMessage =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start " +
  "and end with an alphanumeric character (e.g. 'example.com', regex used for validation is " +
  "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

export const labelMessage =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end " +
  "with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is " +
  "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

export function isValidObjectName(name: string): boolean {
  return name.length <= 253 && DNS1123_SUBDOMAIN.test(name);
}

export function isDnsLabel(name: string): boolean {
  return name.length <= 63 && DNS1123_LABEL.test(name);
}

export function required(field: string, detail?: string): StatusCause {
  return { reason: 'FieldValueRequired', message: detail ? `Required value: ${detail}` : 'Required value', field };
}

export function invalidValue(field: string, value: unknown, why: string): StatusCause {
  return { reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(value)}: ${why}`, field };
}

export function notSupported(field: string, value: unknown, supported: string[]): StatusCause {
  return {
    reason: 'FieldValueNotSupported',
    message: `Unsupported value: ${JSON.stringify(value)}: supported values: ${supported.map((s) => JSON.stringify(s)).join(', ')}`,
    field,
  };
}

/** The name check every kind has (the real `ValidateObjectMeta` with a DNS-subdomain name). */
export function nameCauses(object: KubeObject): StatusCause[] {
  const name = object.metadata?.name ?? '';
  return isValidObjectName(name) ? [] : [invalidValue('metadata.name', name, subdomainMessage)];
}

/** Namespaces (and a few kinds) need a DNS label: no dots, at most 63 characters. */
export function labelNameCauses(object: KubeObject): StatusCause[] {
  const name = object.metadata?.name ?? '';
  return isDnsLabel(name) ? [] : [invalidValue('metadata.name', name, labelMessage)];
}

function at(object: KubeObject, path: string): string {
  let value: unknown = object;
  for (const part of path.split('.')) value = (value as Record<string, unknown> | undefined)?.[part];
  return value === undefined || value === null ? '' : String(value);
}

/** Field selectors on `metadata.name`, `metadata.namespace` and the given paths. */
export function fieldsOf(...paths: string[]): Record<string, (object: KubeObject) => string> {
  const fields: Record<string, (object: KubeObject) => string> = {
    'metadata.name': (o) => at(o, 'metadata.name'),
    'metadata.namespace': (o) => at(o, 'metadata.namespace'),
  };
  for (const path of paths) fields[path] = (o) => at(o, path);
  return fields;
}

/** `/spec/containers/0/image` (the schema validator's pointer) as the API's `spec.containers[0].image`. */
function fieldPathOf(pointer: string, extra?: string): string {
  const parts = pointer.split('/').filter((p) => p.length > 0);
  if (extra) parts.push(extra);
  let path = '';
  for (const part of parts) path += /^\d+$/.test(part) ? `[${part}]` : path ? `.${part}` : part;
  return path || '<root>';
}

interface SchemaError {
  instancePath?: string;
  keyword?: string;
  params?: { missingProperty?: string; type?: string; allowedValues?: unknown[] };
  message?: string;
}

/** A `kubernetes-models` class: built from an object, `validate()` throws the schema's errors. */
export type ModelClass = new (data: never) => { validate(): void };

/** Checks an object against the official schema of its kind (from `kubernetes-models`), as 422 causes. */
export function schemaCauses(Model: ModelClass, object: KubeObject): StatusCause[] {
  try {
    new Model(structuredClone(object) as never).validate();
    return [];
  } catch (error) {
    const errors = (error as { errors?: SchemaError[] }).errors ?? [];
    if (errors.length === 0) return [{ reason: 'FieldValueInvalid', message: String(error) }];
    return errors.map((e): StatusCause => {
      if (e.keyword === 'required' && e.params?.missingProperty) return required(fieldPathOf(e.instancePath ?? '', e.params.missingProperty));
      if (e.keyword === 'type') {
        return { reason: 'FieldValueTypeInvalid', message: `Invalid value: must be of type ${e.params?.type}`, field: fieldPathOf(e.instancePath ?? '') };
      }
      return { reason: 'FieldValueInvalid', message: `Invalid value: ${e.message ?? 'invalid'}`, field: fieldPathOf(e.instancePath ?? '') };
    });
  }
}

/** Schema first, then the name: what most kinds' validation amounts to. */
export function schemaAndName(Model: ModelClass): (object: KubeObject) => StatusCause[] {
  return (object) => {
    const schema = schemaCauses(Model, object);
    return schema.length > 0 ? schema : nameCauses(object);
  };
}

export function nowSeconds(offsetSeconds = 0): string {
  return new Date(Math.floor(Date.now() / 1000) * 1000 + offsetSeconds * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
}

/** Names made from `generateName` use the real server's alphabet (no vowels, no look-alikes). */
const NAME_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

export function randomSuffix(length = 5): string {
  let suffix = '';
  for (const b of randomBytes(length)) suffix += NAME_ALPHABET[b % NAME_ALPHABET.length];
  return suffix;
}
