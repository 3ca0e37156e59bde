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
  /**
   * One map by id, nothing per peer: adding and settling are on every request's path, failing a
   * peer (a link going down) is rare and walks what is pending, which is bounded by what is in flight.
   */
  readonly #pending = new Map<number, Pending>();

  /** Registers what to do with the answer; returns the id to send. */
  add(pending: Pending): number {
    const id = this.#next++;
    this.#pending.set(id, pending);
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
    pending.settle(ok, value);
    return true;
  }

  /** The link to `peer` is gone: everything pending on it fails with `reason`. */
  failPeer(peer: Peer, reason: Error): void {
    const ids: number[] = [];
    for (const [id, pending] of this.#pending) if (pending.peer === peer) ids.push(id);
    // Settled in the order they were made; one that settles may add or settle others.
    for (const id of ids) {
      const pending = this.#pending.get(id);
      if (pending) this.settle(id, pending.kind, false, reason);
    }
  }

  /** Something still waits on an answer from `peer`. */
  pendingOn(peer: Peer): boolean {
    for (const pending of this.#pending.values()) if (pending.peer === peer) return true;
    return false;
  }
}
