/**
 * Every answer this node waits for, in one table: replies to its requests (`OP_REPLY`, only from
 * the peer asked) and answers to its nact queries of remote actors (a dispatch to a reply id, from
 * any node the query was forwarded to). Ids are node-wide; each entry knows the peer it went to,
 * so a link going down fails what was pending on it, once.
 */
import type { Peer } from './peer.js';

/** A request (answered by OP_REPLY) or a query (answered by a dispatch to its reply ref, or OP_NO_ACTOR). */
export type ReplyKind = 'request' | 'query';

/** What waits for one answer: it is its own table entry (no wrapper per request). */
export interface Pending {
  readonly kind: ReplyKind;
  readonly peer: Peer;
  settle(ok: boolean, value: unknown): void;
}

export class ReplyTable {
  #next = 1;
  readonly #pending = new Map<number, Pending>();
  readonly #byPeer = new Map<Peer, Set<number>>();

  /** Registers what to do with the answer; returns the id to send. */
  add(pending: Pending): number {
    const id = this.#next++;
    const { peer } = pending;
    this.#pending.set(id, pending);
    let ids = this.#byPeer.get(peer);
    if (!ids) this.#byPeer.set(peer, (ids = new Set()));
    ids.add(id);
    return id;
  }

  has(id: number): boolean {
    return this.#pending.has(id);
  }

  /**
   * Settles entry `id` once, if it is of `kind` and (when `from` is given) was sent to that peer:
   * a peer cannot answer what it was not asked. Any value a peer sends is accepted here.
   */
  settle(id: unknown, kind: ReplyKind, ok: boolean, value: unknown, from?: Peer): boolean {
    if (typeof id !== 'number') return false;
    const pending = this.#pending.get(id);
    if (pending === undefined || pending.kind !== kind || (from !== undefined && pending.peer !== from)) return false;
    this.#pending.delete(id);
    const ids = this.#byPeer.get(pending.peer);
    ids?.delete(id);
    if (ids?.size === 0) this.#byPeer.delete(pending.peer);
    pending.settle(ok, value);
    return true;
  }

  /** The link to `peer` is gone: everything pending on it fails with `reason`. */
  failPeer(peer: Peer, reason: Error): void {
    const ids = this.#byPeer.get(peer);
    if (!ids) return;
    for (const id of [...ids]) {
      const pending = this.#pending.get(id);
      if (pending) this.settle(id, pending.kind, false, reason);
    }
  }

  /** Something still waits on an answer from `peer`. */
  pendingOn(peer: Peer): boolean {
    return this.#byPeer.has(peer);
  }
}
