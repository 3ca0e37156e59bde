/**
 * The wire codec: msgpackr with extensions so that actor refs and Errors (name, message, stack,
 * code, cause) survive a round trip. Maps, Dates, Sets, BigInts, typed arrays and Buffers use
 * msgpackr's own types. `__proto__` keys are renamed by msgpackr on decode, so a
 * message cannot pollute prototypes.
 *
 * msgpackr extensions are process-global (and override its built-in ones); refs need to know which node is
 * decoding, so decoding sets a context for the duration of one synchronous `unpack`.
 */
import { Packr, addExtension } from 'msgpackr';
import { EncodeError, FlameError, ProtocolError, RemoteError, errorClasses, isFlameError } from '../errors.js';
import { references, type NactRefShape } from './nact-internals.js';
import { RemoteRef, type RefKind } from './remote-ref.js';
import { asText, describe } from './wire.js';

/** What decoding a frame needs to know about the node that reads it. */
export interface DecodeContext {
  /** The node the frame came from (marks remote stacks). */
  readonly peer: string;
  /** Builds the object a `[node, kind, data]` ref becomes on this node. */
  ref(node: string, kind: RefKind | 'n', data: unknown): unknown;
}

const EXT_REF = 0x46;
const EXT_ERROR = 0x47;

/** nact system name -> node name, for every node of this process (to encode local refs). */
const nodeOfSystem = new Map<string, string>();

export function registerLocalSystem(systemName: string, node: string): void {
  nodeOfSystem.set(systemName, node);
}

export function unregisterLocalSystem(systemName: string): void {
  nodeOfSystem.delete(systemName);
}

function localNode(ref: NactRefShape): string {
  const node = ref.system.name === undefined ? undefined : nodeOfSystem.get(ref.system.name);
  if (node === undefined) {
    throw new EncodeError(
      `cannot send a ref of nact system "${ref.system.name}": it is not the system of a flame node in this process`,
    );
  }
  return node;
}

let decoding: DecodeContext | undefined;

/** Built-in classes rebuilt as themselves. A Map: a peer's error named `toString` must not find Object's. */
const BUILTIN_ERRORS: ReadonlyMap<string, ErrorConstructor> = new Map(
  [Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError].map((C) => [C.name, C]),
);

type WireError = [name: string, message: string, stack: string | undefined, code: unknown, cause: unknown, props: Record<string, unknown> | undefined];

function errorToWire(e: Error): WireError {
  let props: Record<string, unknown> | undefined;
  for (const key of Object.keys(e)) {
    if (key === 'code' || key === 'cause' || key === 'name' || key === 'message' || key === 'stack') continue;
    const v = (e as unknown as Record<string, unknown>)[key];
    // By code, not instanceof: shipped code may throw errors of its own copy of flame-actors
    // (a runner started from the bundled entry point runs another copy of this library).
    if (v === null || ['string', 'number', 'boolean'].includes(typeof v) || (key === 'details' && isFlameError(e))) {
      (props ??= {})[key] = v;
    }
  }
  const code = (e as { code?: unknown }).code;
  return [className(e), e.message, e.stack, code, 'cause' in e ? e.cause : undefined, props];
}

/** The name an error travels under: its `name`, or its class's when a subclass left `name` as 'Error'. */
function className(e: Error): string {
  const name = String(e.name);
  if (name !== 'Error') return name;
  const constructorName = (Object.getPrototypeOf(e) as { constructor?: { name?: unknown } } | null)?.constructor?.name;
  return typeof constructorName === 'string' && constructorName !== '' ? constructorName : name;
}

function errorFromWire([rawName, rawMessage, rawStack, code, cause, props]: WireError): Error {
  // Every field comes from a peer: anything msgpackr can produce must give an Error, not a throw.
  const peer = decoding?.peer ?? 'remote';
  const name = asText(rawName, 200);
  const message = asText(rawMessage);
  const stack = typeof rawStack === 'string' ? rawStack : undefined;
  const flameClass = typeof code === 'string' ? errorClasses.get(code) : undefined;
  const builtin = BUILTIN_ERRORS.get(name);
  let error: Error;
  if (flameClass) {
    error = new flameClass(message, cause === undefined ? {} : { cause });
  } else if (builtin) {
    error = new builtin(message, cause === undefined ? undefined : { cause });
  } else {
    const remote = new RemoteError(message, cause === undefined ? {} : { cause });
    remote.name = name;
    if (code !== undefined && code !== null) remote.code = asText(code, 200);
    error = remote;
  }
  if (typeof props === 'object' && props !== null && !Array.isArray(props)) {
    for (const k of Object.keys(props)) {
      const v = (props as Record<string, unknown>)[k];
      if (k === 'details' && error instanceof FlameError) {
        if (typeof v === 'object' && v !== null) Object.assign(error.details, v);
      } else if (!(k in error)) {
        (error as unknown as Record<string, unknown>)[k] = v;
      }
    }
  }
  if (code !== undefined && code !== null && !flameClass && !(error instanceof RemoteError)) {
    (error as Error & { code?: unknown }).code = code;
  }
  Object.defineProperty(error, 'remoteStack', { value: stack, enumerable: false });
  error.stack = markRemoteStack(`${name}: ${message}`, stack, peer);
  return error;
}

/** Remote frames are prefixed with the node they ran on, so they are not mistaken for local ones. */
function markRemoteStack(header: string, stack: string | undefined, peer: string): string {
  const frames = (stack ?? '').split('\n').filter((l) => /^\s+at /.test(l));
  // Frames marked on an earlier hop keep the node they really ran on.
  return [header, ...frames.map((l) => (/^\s+at \[/.test(l) ? l : l.replace(/^\s+at /, `    at [${peer}] `)))].join('\n');
}

addExtension({
  Class: RemoteRef,
  type: EXT_REF,
  write: (ref: RemoteRef) => [ref.node, ref.kind, ref.kind === 'r' || ref.kind === 't' ? ref.id : ref.path.parts],
  read: (data: unknown) => readRef(data),
});
for (const Class of [references.ActorReference, references.TemporaryReference, references.ActorSystemReference, references.Nobody]) {
  addExtension({
    Class,
    type: EXT_REF,
    write: (ref: NactRefShape) => {
      switch (ref.type) {
        case 'actor':
          return [localNode(ref), 'a', ref.path?.parts ?? []];
        case 'temp':
          return [localNode(ref), 't', ref.id];
        case 'system':
          return [localNode(ref), 's', []];
        default:
          return ['', 'n', null];
      }
    },
    read: (data: unknown) => readRef(data),
  });
}

function readRef(data: unknown): unknown {
  if (!Array.isArray(data) || data.length !== 3 || typeof data[0] !== 'string' || !['a', 's', 't', 'r', 'n'].includes(data[1])) {
    throw new ProtocolError('malformed actor ref on the wire');
  }
  if (decoding === undefined) throw new ProtocolError('actor ref decoded outside a link');
  return decoding.ref(data[0], data[1] as RefKind | 'n', data[2]);
}

addExtension({
  Class: Error,
  type: EXT_ERROR,
  write: (e: Error) => errorToWire(e),
  read: (data: WireError) => {
    if (!Array.isArray(data) || data.length !== 6) throw new ProtocolError('malformed error on the wire');
    return errorFromWire(data);
  },
});

const packr = new Packr({
  // Records make plain objects self-describing structures, which frees msgpack maps to stand
  // for Maps (mapsAsObjects: false); a batch of like messages also encodes smaller and faster.
  useRecords: true,
  mapsAsObjects: false,
  moreTypes: true,
  int64AsType: 'bigint',
  useBigIntExtension: true,
  copyBuffers: true,
  writeFunction: () => {
    throw new EncodeError('functions cannot be sent in messages: send data, a moduleRef, or an actor ref to call back');
  },
} as ConstructorParameters<typeof Packr>[0]);

/**
 * What a rejection carries across the wire: an Error as it is; anything else thrown
 * (`throw 'boom'`, `throw 42`, a plain object) as a RemoteError whose `details.thrown` is the value.
 */
export function asError(value: unknown, what: string): Error {
  if (value instanceof Error) return value;
  const error = new RemoteError(`${what} threw a non-Error value: ${describe(value, 200)}`, { details: { thrown: value } });
  error.name = 'NonErrorThrown';
  return error;
}

/** Encodes a value; throws {@link EncodeError} when it cannot be represented. */
export function encode(value: unknown): Buffer {
  try {
    return packr.pack(value);
  } catch (e) {
    if (e instanceof EncodeError) throw e;
    const message = (e as Error)?.message ?? String(e);
    if (e instanceof RangeError && /call stack/.test(message)) {
      throw new EncodeError('cannot encode message: it is circular or nested too deeply (send a tree of plain data)', { cause: e });
    }
    if (/Unknown type: symbol/.test(message)) {
      throw new EncodeError('cannot encode message: Symbols cannot be sent in messages (send a string)', { cause: e });
    }
    throw new EncodeError(`cannot encode message: ${message}`, { cause: e });
  }
}

/** Decodes one frame in the context of the node reading it; throws {@link ProtocolError} on bad input. */
export function decode(frame: Uint8Array, context: DecodeContext): unknown {
  const previous = decoding;
  decoding = context;
  try {
    return packr.unpack(frame);
  } catch (e) {
    if (e instanceof ProtocolError) throw e;
    throw new ProtocolError(`undecodable frame: ${(e as Error).message}`, { cause: e });
  } finally {
    decoding = previous;
  }
}
