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
   * One table by id, nothing per peer: adding and settling are on every request's path, failing a
   * peer (a link going down) is rare and walks what is pending, which is bounded by what is in flight.
   *
   * Integer keys of a prototype-less object (a number dictionary), not a Map: with an add and a
   * delete per request under ever-new ids, a Map rehashes into a new table every few hundred
   * requests and links the old table to the new one (for live iterators). Once one old table had
   * been promoted to the old generation, that dead chain kept every later table, and every request
   * in them, alive through each young-generation GC: the parent promoted ~4 MB per scavenge (8 ms
   * pauses instead of 0.4) and needed a full GC every ~20,000 calls. A dictionary's rehash leaves
   * nothing linked behind.
   */
  readonly #pending: Record<number, Pending | undefined> = Object.create(null) as Record<number, Pending | undefined>;

  /** Registers what to do with the answer; returns the id to send. */
  add(pending: Pending): number {
    const id = this.#next++;
    this.#pending[id] = pending;
    return id;
  }

  has(id: number): boolean {
    return this.#pending[id] !== undefined;
  }

  /**
   * Settles entry `id` once, if it is of `kind` and (when `from` is given) was sent to that peer:
   * a peer cannot answer what it was not asked. Any value a peer sends is accepted here.
   */
  settle(id: unknown, kind: ReplyKind, ok: boolean, value: unknown, from?: Peer): boolean {
    if (typeof id !== 'number') return false;
    // Any number a peer sends only finds what this node added (the object has no prototype).
    const pending = this.#pending[id];
    if (pending === undefined || pending.kind !== kind || (from !== undefined && pending.peer !== from)) return false;
    delete this.#pending[id];
    pending.settle(ok, value);
    return true;
  }

  /** The link to `peer` is gone: everything pending on it fails with `reason`. */
  failPeer(peer: Peer, reason: Error): void {
    const ids: number[] = [];
    // Integer keys enumerate in ascending order: the order the requests were made.
    for (const key in this.#pending) if (this.#pending[key as unknown as number]?.peer === peer) ids.push(Number(key));
    // Settled in the order they were made; one that settles may add or settle others.
    for (const id of ids) {
      const pending = this.#pending[id];
      if (pending) this.settle(id, pending.kind, false, reason);
    }
  }

  /** Something still waits on an answer from `peer`. */
  pendingOn(peer: Peer): boolean {
    for (const key in this.#pending) if (this.#pending[key as unknown as number]?.peer === peer) return true;
    return false;
  }
}
