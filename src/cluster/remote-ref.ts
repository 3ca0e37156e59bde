/**
 * Refs that cross the wire. A ref is encoded as `[node, kind, data]`; on the node it names it
 * becomes a plain nact ref again, elsewhere a {@link RemoteRef}. A RemoteRef carries the name of
 * a pseudo-system registered in nact's system map by the node holding it, so nact's own
 * `dispatch`, `query` and `stop` route it to that node's link (a pseudo-system per node in nact's
 * system map: refs stay ordinary nact refs, at the cost of one deep import).
 */
import type { ConcreteActor } from './nact-internals.js';

/** `a` actor, `s` a node's actor system, `t` a nact temporary (query) ref, `r` a flame query reply address. */
export type RefKind = 'a' | 's' | 't' | 'r';

/**
 * A target as the receiving node reads it: an actor path `a/b` (nact names cannot contain `/`),
 * the id of one of its query replies, `['t', id]` for a nact temporary ref, `['s']` its system.
 */
export type WireTarget = string | number | ['t', number] | ['s'];

export class RemoteRef {
  /** nact's ref type, so code inspecting `ref.type` sees an actor. */
  readonly type: string;
  readonly system: { name: string };
  readonly path: { parts: string[]; system: string };
  readonly name: string;
  /** The node the actor lives on. */
  readonly node: string;
  readonly kind: RefKind;
  /** The id of a temporary or reply ref. */
  readonly id: number | undefined;

  constructor(holderSystem: string, node: string, kind: RefKind, parts: string[], id?: number) {
    this.type = kind === 'a' ? 'actor' : kind === 's' ? 'system' : 'temp';
    this.system = { name: holderSystem };
    this.path = { parts, system: holderSystem };
    this.name = parts.length > 0 ? parts[parts.length - 1]! : node;
    this.node = node;
    this.kind = kind;
    this.id = id;
  }

  #wire: WireTarget | undefined;

  /** How this ref is named in a message to its own node: no ref decoding on the hot path there. */
  get wire(): WireTarget {
    return (this.#wire ??= this.kind === 'a'
      ? this.path.parts.join('/')
      : this.kind === 'r'
        ? this.id!
        : this.kind === 't'
          ? ['t', this.id!]
          : ['s']);
  }

  toString(): string {
    return this.kind === 'a' || this.kind === 's'
      ? `${this.node}/${this.path.parts.join('/')}`
      : `${this.node}/#${this.kind}${this.id ?? ''}`;
  }
}

/** Name of the pseudo-system through which a local node routes remote refs. */
export function remoteSystemName(localNode: string): string {
  return `flame-remote|${localNode}`;
}

export interface RemoteOps {
  dispatch(target: RemoteRef, message: unknown, sender: unknown): void;
  query(target: RemoteRef, message: unknown, timeout: number): Promise<unknown>;
  stop(target: RemoteRef): void;
}

/** What nact's `dispatch`/`query`/`stop` call for a remote ref (one small object, cached on the ref). */
export class RemoteHandle implements ConcreteActor {
  readonly #ops: RemoteOps;
  readonly #target: RemoteRef;
  constructor(ops: RemoteOps, target: RemoteRef) {
    this.#ops = ops;
    this.#target = target;
  }
  dispatch(message: unknown, sender?: unknown): void {
    this.#ops.dispatch(this.#target, message, sender);
  }
  query(message: unknown, timeout: number): Promise<unknown> {
    return this.#ops.query(this.#target, message, timeout);
  }
  stop(): void {
    this.#ops.stop(this.#target);
  }
}
