/**
 * Routing of nact refs between nodes. Refs to actors on other nodes carry the name of this
 * node's pseudo-system in nact's system map, so nact's own `dispatch`, `query` and `stop` come
 * here and leave on the link to the actor's node; messages arriving from peers are delivered to
 * local actors by path. Query answers are correlated in the node's one reply table.
 */
import { ActorNotFoundError, NodeDownError, NodeStoppedError, ProtocolError, QueryTimeoutError } from '../errors.js';
import { parseNodeName } from './address.js';
import type { DecodeContext } from './codec.js';
import type { Deadline, Deadlines } from './deadlines.js';
import { localActorRef, localSystemRef, localTempRef, references, systemMap, type ConcreteActor } from './nact-internals.js';
import type { Peer } from './peer.js';
import { RemoteHandle, RemoteRef, type RefKind, type RemoteOps } from './remote-ref.js';
import type { ReplyTable } from './replies.js';
import { OP_DISPATCH, OP_DISPATCH_RUN, OP_NO_ACTOR, OP_STOP, describe } from './wire.js';

/** What the router needs from its node. */
export interface RouterHost {
  readonly name: string;
  /** The pseudo-system through which this node's remote refs route. */
  readonly remoteSystem: string;
  readonly stopped: boolean;
  readonly replies: ReplyTable;
  readonly deadlines: Deadlines;
  /** The peer record of `node` (created on first use; throws for this node itself). */
  peer(node: string): Peer;
  undeliverable(target: string, reason: Error): void;
}

/** The sender of a message that has none (what nact's `dispatch` would make anew for each). */
const NOBODY = new references.Nobody();

const REMOTE_HANDLE = Symbol('flame.remoteHandle');
type WithHandle = RemoteRef & { [REMOTE_HANDLE]?: ConcreteActor };

export class Router {
  readonly #host: RouterHost;
  /** Local actors by path, for messages arriving from peers (lookups walk nact's tree: cached). */
  readonly #actors = new Map<string, ConcreteActor & { stopped?: boolean }>();

  constructor(host: RouterHost) {
    this.#host = host;
  }

  /** A ref to the actor at `parts` on `node`, as nact's dispatch/query/stop take it. */
  ref(node: string, parts: string[]): unknown {
    return node === this.#host.name ? localActorRef(node, parts) : new RemoteRef(this.#host.remoteSystem, node, 'a', parts);
  }

  /** nact's system map asks this for refs of our pseudo-system: route them to their peer. */
  findRemote(ref: unknown): ConcreteActor | undefined {
    if (!(ref instanceof RemoteRef)) {
      const r = ref as { node?: unknown; kind?: unknown; path?: { parts?: unknown }; id?: unknown };
      if (typeof r.node !== 'string' || typeof r.kind !== 'string') return undefined;
      ref = new RemoteRef(this.#host.remoteSystem, r.node, r.kind as RefKind, Array.isArray(r.path?.parts) ? (r.path.parts as string[]) : [], r.id as number);
    }
    const target = ref as WithHandle;
    if (target.kind === 'r' && target.node === this.#host.name) {
      return { dispatch: (message) => void this.#host.replies.settle(target.id, 'query', true, message) };
    }
    return (target[REMOTE_HANDLE] ??= new RemoteHandle(this.#remoteOps, target));
  }

  /** How refs in frames from `peer` become objects on this node. */
  decodeContext(peer: Peer): DecodeContext {
    const local = this.#host.name;
    const remoteSystem = this.#host.remoteSystem;
    const from = peer.node;
    return {
      peer: from,
      ref: (node, kind, data) => {
        if (kind === 'n') return new references.Nobody();
        // A ref names a node this one may dial later: refuse names that are not node names.
        if (node !== local && node !== from && !isNodeName(node)) throw new ProtocolError(`malformed node name in a ref: ${describe(node)}`);
        if (node === local) {
          switch (kind) {
            case 'a':
              return localActorRef(local, checkParts(data));
            case 's':
              return localSystemRef(local);
            case 't':
              return localTempRef(local, checkId(data));
            case 'r':
              return new RemoteRef(remoteSystem, local, 'r', [], checkId(data));
          }
        }
        return kind === 'a' || kind === 's'
          ? new RemoteRef(remoteSystem, node, kind, kind === 'a' ? checkParts(data) : [])
          : new RemoteRef(remoteSystem, node, kind, [], checkId(data));
      },
    };
  }

  /** OP_DISPATCH from `peer`. */
  deliver(peer: Peer, target: unknown, message: unknown, sender: unknown): void {
    if (typeof target === 'number') {
      // An answer to one of our queries, possibly from a node the query was forwarded to.
      this.#host.replies.settle(target, 'query', true, message);
      return;
    }
    this.#deliverTo(peer, this.#target(target), target, message, sender);
  }

  /** OP_DISPATCH_RUN from `peer`: one-way messages without a sender to one actor, found once. */
  deliverRun(peer: Peer, target: unknown, messages: unknown): void {
    if (typeof target !== 'string' || !Array.isArray(messages)) {
      peer.protocolError(new ProtocolError(`malformed dispatch run to ${describe(target, 80)}`));
      return;
    }
    let actor = this.#target(target);
    for (const message of messages) {
      // A run is delivered in one go (no handler runs meanwhile), but a stop can come from elsewhere.
      if ((actor as { stopped?: boolean } | undefined)?.stopped) actor = this.#target(target);
      this.#deliverTo(peer, actor, target, message, undefined);
    }
  }

  #deliverTo(peer: Peer, actor: ConcreteActor | undefined, target: unknown, message: unknown, sender: unknown): void {
    if (!actor) {
      const where = describeTarget(target, this.#host.name);
      if (sender instanceof RemoteRef && sender.kind === 'r' && sender.node === peer.node) {
        // The query's own node is told at once (a forwarded query just times out).
        peer.trySend([OP_NO_ACTOR, sender.id, where]);
      } else {
        this.#host.undeliverable(where, new ActorNotFoundError(`no actor ${where} on ${this.#host.name}`));
      }
      return;
    }
    try {
      // nact's own default for a missing sender is a new Nobody (four objects) per message, and
      // each one lives in the mailbox with its message: one shared instance instead.
      actor.dispatch(message, sender === undefined ? NOBODY : sender);
    } catch (error) {
      this.#host.undeliverable(describeTarget(target, this.#host.name), error as Error);
    }
  }

  /** OP_STOP from `peer`. */
  stop(peer: Peer, target: unknown): void {
    if (target === '' || (Array.isArray(target) && target[0] === 's')) {
      // Stopping the system would stop every actor of this node: no peer may do that.
      this.#host.undeliverable(describeTarget(target, this.#host.name), new ProtocolError(`${peer.node} may not stop the actor system of ${this.#host.name}`));
      return;
    }
    try {
      this.#target(target)?.stop?.();
    } catch (error) {
      this.#host.undeliverable(describeTarget(target, this.#host.name), error as Error);
    }
  }

  /** OP_NO_ACTOR from `peer`: the target of one of our queries does not exist there. */
  noActor(peer: Peer, id: unknown, target: unknown): void {
    const where = describe(target, 200);
    this.#host.replies.settle(id, 'query', false, new ActorNotFoundError(`Actor stopped or never existed: ${where} on ${peer.node}`, { details: { target: where } }));
  }

  /** Messages that were still queued for a peer that went down. */
  undelivered(peer: Peer, messages: unknown[][], reason: Error): void {
    for (const message of messages) {
      if (message[0] === OP_DISPATCH || message[0] === OP_STOP) this.#host.undeliverable(describeTarget(message[1], peer.node), reason);
      if (message[0] === OP_DISPATCH_RUN) {
        const target = describeTarget(message[1], peer.node);
        for (let i = 0; i < (message[2] as unknown[]).length; i++) this.#host.undeliverable(target, reason);
      }
    }
  }

  /** What the handles nact finds for remote refs do; one object shared by all of them. */
  readonly #remoteOps: RemoteOps = {
    dispatch: (target, message, sender) => {
      // nact substitutes Nobody for a missing sender; it means nothing on the other side.
      if (sender instanceof references.Nobody || sender === undefined) {
        if (target.kind === 'a') return this.#sendOrReport(target, message, target.wire as string);
        return this.#sendOrReport(target, [OP_DISPATCH, target.wire, message, undefined]);
      }
      this.#sendOrReport(target, [OP_DISPATCH, target.wire, message, sender]);
    },
    query: (target, message, timeout) => this.#query(target, message, timeout),
    stop: (target) => this.#sendOrReport(target, [OP_STOP, target.wire]),
  };

  /** Queues `message` for the target's node: a tuple, or (with `path`) a one-way message without sender in a dispatch run. */
  #sendOrReport(target: RemoteRef, message: unknown, path?: string): void {
    if (this.#host.stopped) {
      this.#host.undeliverable(String(target), new NodeStoppedError(`node ${this.#host.name} is stopped`));
      return;
    }
    try {
      const peer = this.#host.peer(target.node);
      if (path !== undefined) peer.dispatch(path, message);
      else peer.send(message as unknown[]);
    } catch (error) {
      if (!(error instanceof NodeDownError)) throw error;
      this.#host.undeliverable(String(target), error);
    }
  }

  #query(target: RemoteRef, message: unknown, timeout: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (this.#host.stopped) {
        reject(new NodeStoppedError(`node ${this.#host.name} is stopped`));
        return;
      }
      const { replies } = this.#host;
      const peer = this.#host.peer(target.node);
      let deadline: Deadline | undefined;
      const id = replies.add({
        kind: 'query',
        peer,
        settle(ok, value) {
          deadline?.cancel();
          if (ok) resolve(value);
          else reject(value);
        },
      });
      deadline = this.#host.deadlines.after(timeout, () => {
        replies.settle(id, 'query', false, new QueryTimeoutError(`Query Timeout: ${target} did not answer within ${timeout} ms`, {
          details: { target: String(target), timeout },
        }));
      });
      const replyTo = new RemoteRef(this.#host.remoteSystem, this.#host.name, 'r', [], id);
      try {
        const msg = typeof message === 'function' ? (message as (ref: unknown) => unknown)(replyTo) : message;
        peer.send([OP_DISPATCH, target.wire, msg, replyTo], (error) => replies.settle(id, 'query', false, error));
      } catch (error) {
        replies.settle(id, 'query', false, error);
      }
    });
  }

  /** The local actor a wire target names. */
  #target(target: unknown): ConcreteActor | undefined {
    const name = this.#host.name;
    if (typeof target === 'string') {
      const cached = this.#actors.get(target);
      if (cached && !cached.stopped) return cached;
      const actor = systemMap.find(name, localActorRef(name, target === '' ? [] : target.split('/')));
      if (actor) {
        if (this.#actors.size >= 10_000) this.#actors.clear();
        this.#actors.set(target, actor);
      }
      return actor;
    }
    if (Array.isArray(target)) {
      if (target[0] === 't' && typeof target[1] === 'number') return systemMap.find(name, localTempRef(name, target[1]));
      if (target[0] === 's') return systemMap.find(name, localSystemRef(name));
    }
    return undefined;
  }
}

function checkParts(data: unknown): string[] {
  if (!Array.isArray(data) || !data.every((p) => typeof p === 'string')) throw new ProtocolError('malformed actor path');
  return data as string[];
}

function checkId(data: unknown): number {
  if (typeof data !== 'number' || !Number.isInteger(data)) throw new ProtocolError('malformed ref id');
  return data;
}

/** A wire target as people read it: `node/path`. */
function describeTarget(target: unknown, node: string): string {
  if (typeof target === 'string') return `${node}/${target.length > 200 ? `${target.slice(0, 200)}\u2026` : target}`;
  if (typeof target === 'number') return `${node}/#reply${target}`;
  return `${node}/${describe(target)}`;
}

function isNodeName(node: string): boolean {
  try {
    parseNodeName(node);
    return true;
  } catch {
    return false;
  }
}
