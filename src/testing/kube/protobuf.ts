/**
 * The protobuf bodies kubectl sends. Its typed commands (`create secret|configmap|namespace|
 * serviceaccount|role|rolebinding|clusterrole|clusterrolebinding|token|deployment`, `auth can-i [--list]`,
 * `auth whoami`, `drain`'s evictions) post `application/vnd.kubernetes.protobuf`
 * (a "k8s\0" envelope around a runtime.Unknown); everything else kubectl and client-node send is
 * JSON. This decodes those few kinds into their JSON shape; answers are always JSON, which both
 * clients accept.
 */

const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

type FieldType = 'string' | 'bytes' | 'int' | 'bool' | 'stringMap' | 'bytesMap' | Schema;
interface FieldSpec {
  name: string;
  type: FieldType;
  repeated?: boolean;
}
type Schema = Record<number, FieldSpec>;

const OWNER_REFERENCE: Schema = {
  1: { name: 'kind', type: 'string' },
  3: { name: 'name', type: 'string' },
  4: { name: 'uid', type: 'string' },
  5: { name: 'apiVersion', type: 'string' },
  6: { name: 'controller', type: 'bool' },
  7: { name: 'blockOwnerDeletion', type: 'bool' },
};

const OBJECT_META: Schema = {
  1: { name: 'name', type: 'string' },
  2: { name: 'generateName', type: 'string' },
  3: { name: 'namespace', type: 'string' },
  6: { name: 'resourceVersion', type: 'string' },
  11: { name: 'labels', type: 'stringMap' },
  12: { name: 'annotations', type: 'stringMap' },
  13: { name: 'ownerReferences', type: OWNER_REFERENCE, repeated: true },
  14: { name: 'finalizers', type: 'string', repeated: true },
};

const NAME_REFERENCE: Schema = { 1: { name: 'name', type: 'string' } };

const POLICY_RULE: Schema = {
  1: { name: 'verbs', type: 'string', repeated: true },
  2: { name: 'apiGroups', type: 'string', repeated: true },
  3: { name: 'resources', type: 'string', repeated: true },
  4: { name: 'resourceNames', type: 'string', repeated: true },
  5: { name: 'nonResourceURLs', type: 'string', repeated: true },
};

const BINDING: Schema = {
  1: { name: 'metadata', type: OBJECT_META },
  2: {
    name: 'subjects',
    repeated: true,
    type: { 1: { name: 'kind', type: 'string' }, 2: { name: 'apiGroup', type: 'string' }, 3: { name: 'name', type: 'string' }, 4: { name: 'namespace', type: 'string' } },
  },
  3: { name: 'roleRef', type: { 1: { name: 'apiGroup', type: 'string' }, 2: { name: 'kind', type: 'string' }, 3: { name: 'name', type: 'string' } } },
};

const DELETE_OPTIONS: Schema = {
  1: { name: 'gracePeriodSeconds', type: 'int' },
  2: { name: 'preconditions', type: { 1: { name: 'uid', type: 'string' }, 2: { name: 'resourceVersion', type: 'string' } } },
  4: { name: 'propagationPolicy', type: 'string' },
  5: { name: 'dryRun', type: 'string', repeated: true },
};

/** What `kubectl create deployment NAME --image --port --replicas -- COMMAND` fills in (unknown fields are skipped). */
const CONTAINER: Schema = {
  1: { name: 'name', type: 'string' },
  2: { name: 'image', type: 'string' },
  3: { name: 'command', type: 'string', repeated: true },
  4: { name: 'args', type: 'string', repeated: true },
  5: { name: 'workingDir', type: 'string' },
  6: {
    name: 'ports',
    repeated: true,
    type: { 1: { name: 'name', type: 'string' }, 2: { name: 'hostPort', type: 'int' }, 3: { name: 'containerPort', type: 'int' }, 4: { name: 'protocol', type: 'string' } },
  },
  7: { name: 'env', repeated: true, type: { 1: { name: 'name', type: 'string' }, 2: { name: 'value', type: 'string' } } },
  14: { name: 'imagePullPolicy', type: 'string' },
};

const DEPLOYMENT: Schema = {
  1: { name: 'metadata', type: OBJECT_META },
  2: {
    name: 'spec',
    type: {
      1: { name: 'replicas', type: 'int' },
      2: { name: 'selector', type: { 1: { name: 'matchLabels', type: 'stringMap' } } },
      3: {
        name: 'template',
        type: {
          1: { name: 'metadata', type: OBJECT_META },
          2: { name: 'spec', type: { 2: { name: 'containers', type: CONTAINER, repeated: true }, 3: { name: 'restartPolicy', type: 'string' } } },
        },
      },
      4: { name: 'strategy', type: { 1: { name: 'type', type: 'string' } } },
    },
  },
};

const KINDS: Record<string, Schema> = {
  Deployment: DEPLOYMENT,
  Role: { 1: { name: 'metadata', type: OBJECT_META }, 2: { name: 'rules', type: POLICY_RULE, repeated: true } },
  ClusterRole: { 1: { name: 'metadata', type: OBJECT_META }, 2: { name: 'rules', type: POLICY_RULE, repeated: true } },
  RoleBinding: BINDING,
  ClusterRoleBinding: BINDING,
  TokenRequest: {
    1: { name: 'metadata', type: OBJECT_META },
    2: {
      name: 'spec',
      type: {
        1: { name: 'audiences', type: 'string', repeated: true },
        3: { name: 'boundObjectRef', type: { 1: { name: 'kind', type: 'string' }, 2: { name: 'apiVersion', type: 'string' }, 3: { name: 'name', type: 'string' }, 4: { name: 'uid', type: 'string' } } },
        4: { name: 'expirationSeconds', type: 'int' },
      },
    },
  },
  SelfSubjectRulesReview: { 1: { name: 'metadata', type: OBJECT_META }, 2: { name: 'spec', type: { 1: { name: 'namespace', type: 'string' } } } },
  SelfSubjectReview: { 1: { name: 'metadata', type: OBJECT_META } },
  Eviction: { 1: { name: 'metadata', type: OBJECT_META }, 2: { name: 'deleteOptions', type: DELETE_OPTIONS } },
  Secret: {
    1: { name: 'metadata', type: OBJECT_META },
    2: { name: 'data', type: 'bytesMap' },
    3: { name: 'type', type: 'string' },
    4: { name: 'stringData', type: 'stringMap' },
    5: { name: 'immutable', type: 'bool' },
  },
  ConfigMap: {
    1: { name: 'metadata', type: OBJECT_META },
    2: { name: 'data', type: 'stringMap' },
    3: { name: 'binaryData', type: 'bytesMap' },
    4: { name: 'immutable', type: 'bool' },
  },
  Namespace: { 1: { name: 'metadata', type: OBJECT_META } },
  ServiceAccount: {
    1: { name: 'metadata', type: OBJECT_META },
    3: { name: 'imagePullSecrets', type: NAME_REFERENCE, repeated: true },
    4: { name: 'automountServiceAccountToken', type: 'bool' },
  },
  SelfSubjectAccessReview: {
    2: {
      name: 'spec',
      type: {
        1: {
          name: 'resourceAttributes',
          type: {
            1: { name: 'namespace', type: 'string' },
            2: { name: 'verb', type: 'string' },
            3: { name: 'group', type: 'string' },
            4: { name: 'version', type: 'string' },
            5: { name: 'resource', type: 'string' },
            6: { name: 'subresource', type: 'string' },
            7: { name: 'name', type: 'string' },
          },
        },
      },
    },
  },
};

interface RawField {
  field: number;
  varint?: number;
  bytes?: Buffer;
}

function readVarint(buffer: Buffer, offset: number): [number, number] {
  let value = 0;
  let shift = 0;
  for (let i = offset; i < buffer.length && shift < 64; i++) {
    const byte = buffer[i]!;
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if ((byte & 0x80) === 0) return [value, i + 1];
  }
  throw new Error('protobuf: truncated varint');
}

function rawFields(buffer: Buffer): RawField[] {
  const fields: RawField[] = [];
  let offset = 0;
  while (offset < buffer.length) {
    const [key, afterKey] = readVarint(buffer, offset);
    const field = Math.floor(key / 8);
    const wireType = key % 8;
    offset = afterKey;
    if (wireType === 0) {
      const [varint, next] = readVarint(buffer, offset);
      fields.push({ field, varint });
      offset = next;
    } else if (wireType === 2) {
      const [length, start] = readVarint(buffer, offset);
      if (start + length > buffer.length) throw new Error('protobuf: truncated field');
      fields.push({ field, bytes: buffer.subarray(start, start + length) });
      offset = start + length;
    } else if (wireType === 1) offset += 8;
    else if (wireType === 5) offset += 4;
    else throw new Error(`protobuf: unsupported wire type ${wireType}`);
  }
  return fields;
}

function mapEntry(bytes: Buffer): [string, Buffer] {
  let key = '';
  let value: Buffer = Buffer.alloc(0);
  for (const f of rawFields(bytes)) {
    if (f.field === 1 && f.bytes) key = f.bytes.toString('utf8');
    if (f.field === 2 && f.bytes) value = f.bytes;
  }
  return [key, value];
}

function decodeMessage(buffer: Buffer, schema: Schema): Record<string, unknown> {
  const object: Record<string, unknown> = {};
  for (const raw of rawFields(buffer)) {
    const spec = schema[raw.field];
    if (!spec) continue;
    let value: unknown;
    if (spec.type === 'int') value = raw.varint;
    else if (spec.type === 'bool') value = raw.varint === 1;
    else if (!raw.bytes) continue;
    else if (spec.type === 'string') {
      // Go's protobuf writes empty strings that its JSON would omit; the API treats both as unset.
      if (raw.bytes.length === 0 && !spec.repeated) continue;
      value = raw.bytes.toString('utf8');
    }
    else if (spec.type === 'bytes') value = raw.bytes.toString('base64');
    else if (spec.type === 'stringMap' || spec.type === 'bytesMap') {
      const [key, entry] = mapEntry(raw.bytes);
      const map = (object[spec.name] ??= {}) as Record<string, string>;
      map[key] = spec.type === 'stringMap' ? entry.toString('utf8') : entry.toString('base64');
      continue;
    } else value = decodeMessage(raw.bytes, spec.type);
    if (spec.repeated) ((object[spec.name] ??= []) as unknown[]).push(value);
    else object[spec.name] = value;
  }
  return object;
}

export function isKubernetesProtobuf(body: Buffer): boolean {
  return body.length >= 4 && body.subarray(0, 4).equals(MAGIC);
}

/** Decodes a protobuf body into the object's JSON shape; throws for kinds it does not know. */
export function decodeProtobufObject(body: Buffer): Record<string, unknown> {
  let apiVersion = '';
  let kind = '';
  let raw: Buffer = Buffer.alloc(0);
  for (const f of rawFields(body.subarray(4))) {
    if (f.field === 1 && f.bytes) {
      for (const t of rawFields(f.bytes)) {
        if (t.field === 1 && t.bytes) apiVersion = t.bytes.toString('utf8');
        if (t.field === 2 && t.bytes) kind = t.bytes.toString('utf8');
      }
    }
    if (f.field === 2 && f.bytes) raw = f.bytes;
  }
  const schema = KINDS[kind];
  if (!schema) throw new Error(`protobuf bodies of kind ${kind || '<unknown>'} are not supported; send JSON`);
  return { apiVersion, kind, ...decodeMessage(raw, schema) };
}
