/**
 * One remote node as seen from this node: the authenticated link to it (at most one at a time),
 * its heartbeat, the frames it brings in, and its failure. What goes out waits in the link's
 * {@link Outbox} (outbox.ts: the queue, coalescing and flushing); the link decides whether a
 * message may be queued at all (not to a node known down) and hands the outbox its socket while up.
 */
import type { WebSocket } from 'ws';
import { decode, type DecodeContext } from './codec.js';
import { NodeDownError, ProtocolError } from '../errors.js';
import { linkTrafficChannel } from '../observability/diagnostics.js';
import { countMessages } from './frames.js';
import { Outbox, guard, type OutboxHost, type SendFailure } from './outbox.js';
import { closeReason, describe } from './wire.js';

/** An authenticated WebSocket to a peer, as the handshake hands it over. */
export interface Connection {
  ws: WebSocket;
  peerNode: string;
  /** Random id of the peer process's node instance: a new one means the peer restarted. */
  incarnation: string;
  /** The largest frame the peer accepts. */
  maxPayload: number;
  /** Which node dialed this connection. */
  dialer: string;
}

export type PeerState = 'idle' | 'connecting' | 'up' | 'down';

/** What a peer needs from its node (its outbox's needs included). */
export interface PeerHost extends OutboxHost {
  readonly heartbeatInterval: number;
  readonly heartbeatTimeout: number;
  decodeContext(peer: Peer): DecodeContext;
  receive(peer: Peer, message: unknown): void;
  /** Resolves to the new connection, or to undefined when the peer's own dial won and is attached. */
  dial(peer: Peer): Promise<Connection | undefined>;
  peerUp(peer: Peer): void;
  /**
   * The link is gone (or could not be made: `wasUp` false); what waits on it must fail. `undelivered`:
   * queued messages that had no failure callback.
   */
  peerDown(peer: Peer, reason: Error, undelivered: unknown[][], wasUp: boolean): void;
}

/** Failed dials are not retried by a send sooner than this. */
const REDIAL_AFTER_MS = 500;

export class Peer {
  readonly node: string;
  state: PeerState = 'idle';
  incarnation: string | undefined;

  readonly #host: PeerHost;
  #conn: Connection | undefined;
  /** What is queued for the peer; it writes to the link's socket while the link is up. */
  readonly #outbox: Outbox;
  #connecting: Promise<void> | undefined;
  #lastFailure = -Infinity;
  #lastSeen = 0;
  #heartbeat: NodeJS.Timeout | undefined;
  #decodeContext: DecodeContext | undefined;

  constructor(host: PeerHost, node: string) {
    this.#host = host;
    this.node = node;
    this.#outbox = new Outbox(host, node);
  }

  /** Nothing is queued, awaited or being dialed on this link (the node knows what it waits for itself). */
  get idle(): boolean {
    return this.#outbox.idle && this.#connecting === undefined;
  }

  get connection(): Connection | undefined {
    return this.#conn;
  }

  /** Opens a link unless one is up or being opened; resolves when it is up. */
  connect(): Promise<void> {
    if (this.state === 'up') return Promise.resolve();
    if (this.#connecting) return this.#connecting;
    this.state = 'connecting';
    const attempt = this.#host.dial(this).then(
      (conn) => {
        if (conn === undefined) return;
        if (this.#conn) {
          // A link came up the other way meanwhile (both dialed at once): keep that one.
          conn.ws.close(4002, 'duplicate link');
        } else {
          this.attach(conn);
        }
      },
      (error: Error) => {
        if (this.#conn) return; // the peer's own dial won the tie-break and is up
        // What was waiting to be sent fails as "node down"; connect() itself says why.
        this.#fail(new NodeDownError(`node ${this.node} is unreachable: ${error.message}`, { cause: error, details: { node: this.node } }));
        throw error;
      },
    );
    this.#connecting = attempt.finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  /** Takes over an authenticated connection, replacing any previous link to this node. */
  attach(conn: Connection): void {
    if (this.#conn) this.#fail(new NodeDownError(`link to ${this.node} replaced by a new connection`), true);
    this.#conn = conn;
    this.#outbox.attach(conn);
    this.incarnation = conn.incarnation;
    this.state = 'up';
    this.#lastSeen = performance.now();
    const { ws } = conn;
    // Nothing may throw out of a socket listener: it would end the process, not just this link.
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (this.#conn?.ws !== ws) return;
      this.#lastSeen = performance.now();
      this.#guard(() => this.#onFrame(data, isBinary));
    });
    ws.on('pong', () => {
      if (this.#conn?.ws === ws) this.#lastSeen = performance.now();
    });
    ws.on('ping', () => {
      if (this.#conn?.ws === ws) this.#lastSeen = performance.now();
    });
    ws.on('close', (code: number, reason: Buffer) => {
      if (this.#conn?.ws !== ws) return;
      const why = reason.length > 0 ? reason.toString() : code === 1006 ? 'connection lost' : `closed (${code})`;
      this.#guard(() => this.#fail(new NodeDownError(`node ${this.node} is down: ${why}`, { details: { node: this.node, closeCode: code } })));
    });
    ws.on('error', (error: Error) => {
      if (this.#conn?.ws !== ws) return;
      this.#host.logger.warn(`link to ${this.node} failed: ${error.message}`);
      this.#guard(() => this.#fail(new NodeDownError(`node ${this.node} is down: ${error.message}`, { cause: error, details: { node: this.node } })));
    });
    this.#heartbeat = setInterval(() => this.#beat(ws), this.#host.heartbeatInterval);
    this.#heartbeat.unref();
    this.#guard(() => this.#host.peerUp(this));
    this.#outbox.flushLater();
  }

  /**
   * Queues one message for the peer; it leaves with the rest of this turn's messages.
   * Throws OverloadedError when the queue is full, NodeDownError when the peer is known down.
   */
  send(message: unknown[], onFailure?: SendFailure): void {
    this.#admit();
    this.#outbox.send(message, onFailure);
  }

  /**
   * Queues a one-way message without a sender for the actor at `path` on the peer (its wire
   * path); consecutive ones to the same actor leave as one run (see {@link Outbox.dispatch}).
   * Throws as {@link send} does.
   */
  dispatch(path: string, message: unknown): void {
    this.#admit();
    this.#outbox.dispatch(path, message);
  }

  /** Throws NodeDownError when the peer is known down (dialing it again once in a while); the outbox then checks it has room. */
  #admit(): void {
    if (this.state === 'down' || this.state === 'idle') {
      if (performance.now() - this.#lastFailure < REDIAL_AFTER_MS) {
        throw new NodeDownError(`node ${this.node} is down`, { details: { node: this.node } });
      }
      this.connect().catch(() => {});
    }
  }

  /** {@link send} that reports instead of throwing: false when the message was not queued. */
  trySend(message: unknown[], onFailure?: SendFailure): boolean {
    try {
      this.send(message, onFailure);
      return true;
    } catch {
      return false;
    }
  }

  /** Resolves once the peer's queue and socket buffer have room again. */
  whenWritable(): Promise<void> {
    return this.#outbox.whenWritable();
  }

  /** Closes the link on purpose; pending work fails with NodeDownError. */
  close(code: number, reason: string): void {
    const conn = this.#conn;
    if (conn) {
      // Let queued messages leave first: a graceful close is ordered after them.
      this.#outbox.flush();
      conn.ws.close(code, closeReason(reason));
    }
    this.#fail(new NodeDownError(`node ${this.node} disconnected: ${reason}`, { details: { node: this.node } }));
  }

  /** Drops the link because the peer broke the protocol. */
  protocolError(error: Error): void {
    this.#host.logger.warn(`closing link to ${this.node}: ${error.message}`);
    this.#conn?.ws.close(4003, closeReason(error.message));
    this.#fail(new NodeDownError(`link to ${this.node} closed: ${error.message}`, { cause: error, details: { node: this.node } }));
  }

  #beat(ws: WebSocket): void {
    if (this.#conn?.ws !== ws) return;
    if (performance.now() - this.#lastSeen > this.#host.heartbeatTimeout) {
      ws.terminate();
      this.#fail(new NodeDownError(`node ${this.node} is down: no heartbeat for ${this.#host.heartbeatTimeout} ms`, {
        details: { node: this.node },
      }));
      return;
    }
    ws.ping();
  }

  #onFrame(data: Buffer, isBinary: boolean): void {
    let batch: unknown;
    try {
      if (!isBinary) throw new ProtocolError('text frame received');
      this.#decodeContext ??= this.#host.decodeContext(this);
      batch = decode(data, this.#decodeContext);
      if (!Array.isArray(batch)) throw new ProtocolError('frame is not a batch of messages');
    } catch (e) {
      this.protocolError(e as Error);
      return;
    }
    if (linkTrafficChannel.hasSubscribers) linkTrafficChannel.publish({ node: this.#host.name, peer: this.node, direction: 'in', bytes: data.length, messages: countMessages(batch) });
    // A frame of one message keeps the eager path for its answer (a lone request's latency); a
    // frame of several makes several answers, which wait for the end of the turn together.
    if (batch.length > 1) this.#host.writeTurn.received();
    for (const message of batch) {
      if (this.#conn === undefined) return; // a message closed the link
      try {
        this.#host.receive(this, message);
      } catch (e) {
        // Routing is meant to be total; if a message still finds a hole, only its link pays.
        this.protocolError(new ProtocolError(`message could not be handled: ${(e as Error)?.message ?? describe(e)}`, { cause: e }));
        return;
      }
    }
  }

  /** Runs a listener's work; an exception (a bug, or a user's event listener throwing) is logged, never rethrown. */
  #guard(work: () => void): void {
    guard(this.#host.logger, this.node, work);
  }

  /** The link is gone: everything pending on it fails, once. */
  #fail(reason: Error, replacing = false): void {
    const conn = this.#conn;
    if (conn === undefined && this.state !== 'connecting') return;
    this.#conn = undefined;
    this.#decodeContext = undefined;
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
    if (conn && conn.ws.readyState !== conn.ws.CLOSED && conn.ws.readyState !== conn.ws.CLOSING) conn.ws.terminate();
    this.state = 'down';
    this.#lastFailure = performance.now();
    // A replaced link's queue leaves on the new one; otherwise what was queued fails here.
    const unreported = this.#outbox.linkDown(reason, replacing);
    if (conn) this.#host.logger.info(`${reason.message}`);
    this.#guard(() => this.#host.peerDown(this, reason, unreported, conn !== undefined));
  }
}
