/**
 * The three patch formats the real server accepts: JSON merge patch (RFC 7386), JSON patch
 * (RFC 6902) and strategic merge patch. Strategic merge is JSON merge plus merging the lists
 * Kubernetes declares keyed (containers by name, ports by containerPort...) and its `$patch`
 * directives, which is what `kubectl apply` relies on when it updates a pod.
 */
import { ApiError, apiErrors, failure } from './status.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

function isObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

export function jsonMergePatch(target: unknown, patch: unknown): Json {
  if (!isObject(patch)) return structuredClone(patch) as Json;
  const result: JsonObject = isObject(target) ? structuredClone(target) : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = jsonMergePatch(result[key], value);
  }
  return result;
}

/** Lists Kubernetes merges element by element, and the key identifying an element. */
export const MERGE_KEYS: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  ephemeralContainers: 'name',
  env: 'name',
  volumes: 'name',
  volumeMounts: 'mountPath',
  volumeDevices: 'devicePath',
  ports: 'containerPort',
  imagePullSecrets: 'name',
  ownerReferences: 'uid',
  conditions: 'type',
  containerStatuses: 'name',
  hostAliases: 'ip',
  topologySpreadConstraints: 'topologyKey',
  resourceClaims: 'name',
};

function mergeKeyedList(current: Json[], patch: Json[], key: string): Json[] {
  const result = current.map((e) => structuredClone(e));
  for (const element of patch) {
    if (!isObject(element)) continue;
    const id = element[key];
    const index = result.findIndex((e) => isObject(e) && e[key] === id);
    if (element.$patch === 'delete') {
      if (index >= 0) result.splice(index, 1);
      continue;
    }
    if (index >= 0) result[index] = strategicMergePatch(result[index], element);
    else result.push(strategicMergePatch({}, element));
  }
  return result;
}

export function strategicMergePatch(target: unknown, patch: unknown): Json {
  if (!isObject(patch)) return structuredClone(patch) as Json;
  if (patch.$patch === 'replace') {
    const replaced = structuredClone(patch);
    delete replaced.$patch;
    return replaced;
  }
  const result: JsonObject = isObject(target) ? structuredClone(target) : {};
  for (const [key, value] of Object.entries(patch)) {
    if (key === '$patch' || key === '$retainKeys' || key.startsWith('$setElementOrder/')) continue;
    if (key.startsWith('$deleteFromPrimitiveList/')) {
      const listKey = key.slice('$deleteFromPrimitiveList/'.length);
      const list = result[listKey];
      if (Array.isArray(list) && Array.isArray(value)) result[listKey] = list.filter((e) => !value.includes(e));
      continue;
    }
    if (value === null) {
      delete result[key];
      continue;
    }
    const current = result[key];
    const mergeKey = MERGE_KEYS[key];
    if (mergeKey && Array.isArray(value) && Array.isArray(current)) result[key] = mergeKeyedList(current, value, mergeKey);
    else if (Array.isArray(value)) result[key] = value.filter((e) => !(isObject(e) && e.$patch === 'delete')).map((e) => strategicMergePatch({}, e));
    else result[key] = strategicMergePatch(current, value);
  }
  return result;
}

interface JsonPatchOperation {
  op: 'add' | 'remove' | 'replace' | 'move' | 'copy' | 'test';
  path: string;
  from?: string;
  value?: Json;
}

function pointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw apiErrors.badRequest(`json patch: invalid path ${JSON.stringify(path)}`);
  return path.slice(1).split('/').map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function parentOf(document: Json, parts: string[], path: string): { parent: JsonObject | Json[]; last: string } {
  let node: Json = document;
  for (const part of parts.slice(0, -1)) {
    const next: Json | undefined = Array.isArray(node) ? node[Number(part)] : isObject(node) ? node[part] : undefined;
    if (next === undefined || next === null || typeof next !== 'object') {
      throw apiErrors.internal(`jsonpatch: path ${path} does not exist`);
    }
    node = next;
  }
  if (node === null || typeof node !== 'object') throw apiErrors.internal(`jsonpatch: path ${path} does not exist`);
  return { parent: node, last: parts[parts.length - 1]! };
}

function read(document: Json, path: string): Json {
  let node: Json = document;
  for (const part of pointer(path)) {
    const next: Json | undefined = Array.isArray(node) ? node[Number(part)] : isObject(node) ? node[part] : undefined;
    if (next === undefined) throw apiErrors.internal(`jsonpatch: path ${path} does not exist`);
    node = next;
  }
  return node;
}

function remove(document: Json, path: string): Json {
  const { parent, last } = parentOf(document, pointer(path), path);
  if (Array.isArray(parent)) {
    const index = Number(last);
    if (!(index >= 0 && index < parent.length)) throw apiErrors.internal(`jsonpatch: remove of missing index ${path}`);
    return parent.splice(index, 1)[0]!;
  }
  if (!(last in parent)) throw apiErrors.internal(`jsonpatch: remove of missing key ${path}`);
  const value = parent[last]!;
  delete parent[last];
  return value;
}

function add(document: Json, path: string, value: Json): Json {
  const parts = pointer(path);
  if (parts.length === 0) return structuredClone(value);
  const { parent, last } = parentOf(document, parts, path);
  if (Array.isArray(parent)) {
    const index = last === '-' ? parent.length : Number(last);
    if (!(index >= 0 && index <= parent.length)) throw apiErrors.internal(`jsonpatch: add out of range ${path}`);
    parent.splice(index, 0, structuredClone(value));
  } else {
    parent[last] = structuredClone(value);
  }
  return document;
}

export function jsonPatch(target: unknown, operations: unknown): Json {
  if (!Array.isArray(operations)) throw apiErrors.badRequest('json patch: the patch must be a list of operations');
  let document = structuredClone(target) as Json;
  for (const raw of operations as JsonPatchOperation[]) {
    switch (raw.op) {
      case 'add':
        document = add(document, raw.path, raw.value ?? null);
        break;
      case 'remove':
        remove(document, raw.path);
        break;
      case 'replace':
        read(document, raw.path);
        if (raw.path === '') document = structuredClone(raw.value ?? null);
        else {
          remove(document, raw.path);
          document = add(document, raw.path, raw.value ?? null);
        }
        break;
      case 'move': {
        const value = remove(document, raw.from ?? '');
        document = add(document, raw.path, value);
        break;
      }
      case 'copy':
        document = add(document, raw.path, read(document, raw.from ?? ''));
        break;
      case 'test':
        if (JSON.stringify(read(document, raw.path)) !== JSON.stringify(raw.value)) {
          throw apiErrors.internal(`testing value ${raw.path} failed`);
        }
        break;
      default:
        throw apiErrors.badRequest(`json patch: unexpected operation ${JSON.stringify((raw as { op?: unknown }).op)}`);
    }
  }
  return document;
}

export type PatchType = 'merge' | 'strategic' | 'json';

/** The patch format a request's Content-Type names, or a 415 like the real server's. */
export function patchTypeOf(contentType: string | undefined): PatchType {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/merge-patch+json') return 'merge';
  if (type === 'application/strategic-merge-patch+json') return 'strategic';
  if (type === 'application/json-patch+json') return 'json';
  // Server-side apply (`application/apply-patch+yaml`) is not served: refused as by a server
  // without it, with the content negotiation's own 415 (which names the accepted types only).
  throw new ApiError(failure(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: ${PATCH_TYPES.join(', ')}`));
}

/** The patch content types accepted, in the order the real server lists them. */
export const PATCH_TYPES = ['application/json-patch+json', 'application/merge-patch+json', 'application/strategic-merge-patch+json'];

export function applyPatch(type: PatchType, target: unknown, patch: unknown): Json {
  if (type === 'json') return jsonPatch(target, patch);
  if (!isObject(patch)) throw apiErrors.badRequest('the patch must be a JSON object');
  return type === 'merge' ? jsonMergePatch(target, patch) : strategicMergePatch(target, patch);
}
