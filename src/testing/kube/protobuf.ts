/**
 * The one protobuf body the emulator reads: `kubectl auth can-i` posts its
 * SelfSubjectAccessReview as `application/vnd.kubernetes.protobuf` (the "k8s\0" envelope around a
 * runtime.Unknown). Everything else kubectl and client-node send is JSON; answers are always JSON,
 * which those clients accept.
 */

const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

type Fields = Map<number, Buffer[]>;

function readVarint(buffer: Buffer, offset: number): [number, number] {
  let value = 0;
  let shift = 0;
  for (let i = offset; i < buffer.length && shift < 35; i++) {
    const byte = buffer[i]!;
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if ((byte & 0x80) === 0) return [value, i + 1];
  }
  throw new Error('protobuf: truncated varint');
}

/** Length-delimited fields of one message, by field number (other wire types are skipped). */
function fieldsOf(buffer: Buffer): Fields {
  const fields: Fields = new Map();
  let offset = 0;
  while (offset < buffer.length) {
    const [key, afterKey] = readVarint(buffer, offset);
    const field = Math.floor(key / 8);
    const wireType = key & 7;
    offset = afterKey;
    if (wireType === 0) offset = readVarint(buffer, offset)[1];
    else if (wireType === 1) offset += 8;
    else if (wireType === 5) offset += 4;
    else if (wireType === 2) {
      const [length, start] = readVarint(buffer, offset);
      if (start + length > buffer.length) throw new Error('protobuf: truncated field');
      const list = fields.get(field) ?? [];
      list.push(buffer.subarray(start, start + length));
      fields.set(field, list);
      offset = start + length;
    } else throw new Error(`protobuf: unsupported wire type ${wireType}`);
  }
  return fields;
}

function text(fields: Fields, field: number): string | undefined {
  const value = fields.get(field)?.[0];
  return value === undefined ? undefined : value.toString('utf8');
}

export function isKubernetesProtobuf(body: Buffer): boolean {
  return body.length >= 4 && body.subarray(0, 4).equals(MAGIC);
}

/** Decodes a protobuf SelfSubjectAccessReview into its JSON shape (spec.resourceAttributes only). */
export function decodeAccessReview(body: Buffer): { spec: { resourceAttributes: Record<string, string> } } {
  const unknown = fieldsOf(body.subarray(4));
  const raw = unknown.get(2)?.[0] ?? Buffer.alloc(0);
  const spec = fieldsOf(fieldsOf(raw).get(2)?.[0] ?? Buffer.alloc(0));
  const attributes = fieldsOf(spec.get(1)?.[0] ?? Buffer.alloc(0));
  const names = ['namespace', 'verb', 'group', 'version', 'resource', 'subresource', 'name'];
  const resourceAttributes: Record<string, string> = {};
  names.forEach((name, i) => {
    const value = text(attributes, i + 1);
    if (value) resourceAttributes[name] = value;
  });
  return { spec: { resourceAttributes } };
}
