/**
 * The messages of a link. A frame is one msgpack array of these tuples; the first element of
 * each is its operation code. Everything here is total: it describes any value msgpackr can
 * produce (BigInts, deep nesting, huge strings, prototype keys) without throwing.
 */

/** `[OP_DISPATCH, target (WireTarget), message, sender]` */
export const OP_DISPATCH = 1;
/** `[OP_STOP, target (WireTarget)]` */
export const OP_STOP = 2;
/** `[OP_REQUEST, id, service, payload]` */
export const OP_REQUEST = 3;
/** `[OP_REPLY, id, ok, value]` */
export const OP_REPLY = 4;
/** `[OP_CANCEL, id, reason]` */
export const OP_CANCEL = 5;
/** `[OP_NO_ACTOR, reply id, target]`: a query's target does not exist. */
export const OP_NO_ACTOR = 6;
/**
 * `[OP_DISPATCH_RUN, actor path, messages[]]`: consecutive one-way messages without a sender to
 * one actor, in order (the receiver reads the path and finds the actor once per run).
 */
export const OP_DISPATCH_RUN = 7;

/** Longest close reason the WebSocket protocol allows, in UTF-8 bytes (RFC 6455 5.5: 125 minus the code). */
export const MAX_CLOSE_REASON_BYTES = 123;

/** `reason` cut to {@link MAX_CLOSE_REASON_BYTES} bytes on a character boundary (ws throws on longer ones). */
export function closeReason(reason: string): string {
  if (Buffer.byteLength(reason) <= MAX_CLOSE_REASON_BYTES) return reason;
  let out = '';
  let bytes = 0;
  for (const ch of reason) {
    const size = Buffer.byteLength(ch);
    if (bytes + size > MAX_CLOSE_REASON_BYTES - 3) break;
    out += ch;
    bytes += size;
  }
  return `${out}\u2026`;
}

const LARGE_BIGINT = 2n ** 64n;

/**
 * A short, bounded description of any value for logs and error messages: never throws, never
 * walks more than a few levels or items, never copies a huge string.
 */
export function describe(value: unknown, maxLength = 80): string {
  const text = render(value, 2, maxLength);
  return text.length > maxLength ? `${text.slice(0, maxLength - 1)}\u2026` : text;
}

function render(value: unknown, depth: number, budget: number): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value.length > budget ? value.slice(0, budget) : value);
    case 'number':
    case 'boolean':
    case 'undefined':
      return String(value);
    case 'bigint':
      return value >= LARGE_BIGINT || value <= -LARGE_BIGINT ? 'a bigint wider than 64 bits' : `${value}n`;
    case 'symbol':
      return 'a symbol';
    case 'function':
      return 'a function';
    default:
      break;
  }
  if (value === null) return 'null';
  if (Array.isArray(value)) {
    if (depth === 0) return `[${value.length} items]`;
    const items: string[] = [];
    for (let i = 0; i < value.length && i < 4; i++) items.push(render(value[i], depth - 1, budget / 2));
    return `[${items.join(',')}${value.length > 4 ? ',\u2026' : ''}]`;
  }
  // Object.prototype.toString reads no own property a decoded value could carry (msgpack has no symbols).
  const tag = Object.prototype.toString.call(value).slice(8, -1);
  if (tag !== 'Object') return `a ${tag}`;
  if (depth === 0) return '{\u2026}';
  const keys: string[] = [];
  for (const key in value as object) {
    if (!Object.prototype.hasOwnProperty.call(value, key)) continue;
    if (keys.length === 4) {
      keys.push('\u2026');
      break;
    }
    keys.push(`${JSON.stringify(key.length > 20 ? key.slice(0, 20) : key)}:${render((value as Record<string, unknown>)[key], depth - 1, budget / 2)}`);
  }
  return `{${keys.join(',')}}`;
}

/** A string as it is, anything else described: for text fields read from a peer (error names, codes). */
export function asText(value: unknown, maxLength = 1000): string {
  return typeof value === 'string' ? value : describe(value, maxLength);
}
