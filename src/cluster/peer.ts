/**
 * One remote node as seen from this node: the authenticated link to it (at most one at a time),
 * the outgoing queue, and what is pending on it. Messages produced in one event-loop turn go
 * out as one frame (one msgpack array): per-frame syscalls, not encoding, bound throughput (a
 * frame per message measured 12-20x slower than one frame per turn on a 2-vCPU machine). A peer that does not keep up makes the queue fill; past
 * `maxQueuedMessages` sends fail with OverloadedError, and `whenWritable()` lets senders wait.
 */
import type { WebSocket } from 'ws';
import { encode, decode, type DecodeContext } from './codec.js';
import { NodeDownError, OverloadedError, ProtocolError } from '../errors.js';
import type { Logger } from '../log.js';
import { linkTrafficChannel } from '../observability/diagnostics.js';
import { countMessages, framesOneByOne } from './frames.js';
import { OP_DISPATCH_RUN, closeReason, describe } from './wire.js';
import type { TurnWriter, WriteTurn } from './write-turn.js';

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

/**
 * Called when a queued message could not be sent (encoding failed, too large, peer down), with
 * that message: one function can serve every message that carries its own id.
 */
export type SendFailure = (error: Error, message: unknown[]) => void;

/** What a peer needs from its node. */
export interface PeerHost {
  readonly name: string;
  readonly logger: Logger;
  readonly heartbeatInterval: number;
  readonly heartbeatTimeout: number;
  readonly maxQueuedMessages: number;
  /** The node's end of turn, shared by its links (see write-turn.ts). */
  readonly writeTurn: WriteTurn;
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

/** Bytes buffered in the socket above which flushing waits for the send callbacks. */
const HIGH_WATER = 4 * 1024 * 1024;
/** A message sent this long after the previous frame goes out at once (no coalescing). */
const EAGER_GAP_MS = 0.04;
/** Coalescing stops waiting for more messages at this many... */
const COALESCE_MAX_MESSAGES = 64;
/** ...or when the oldest queued message is this old. */
const COALESCE_MAX_MS = 0.5;
/** Most messages in one dispatch run (the rest of a longer stream starts another). */
const MAX_RUN = 1024;
/** Failed dials are not retried by a send sooner than this. */
const REDIAL_AFTER_MS = 500;

export class Peer implements TurnWriter {
  readonly node: string;
  state: PeerState = 'idle';
  incarnation: string | undefined;

  readonly #host: PeerHost;
  #conn: Connection | undefined;
  #queue: unknown[][] = [];
  /** Messages in the queue (a dispatch run is one entry of several messages). */
  #queued = 0;
  #failures: (SendFailure | undefined)[] = [];
  #flushScheduled = false;
  #queuedAtTick = 0;
  #firstQueuedAt = 0;
  #lastFrameAt = -Infinity;
  #flushing = false;
  /** Waiting for the end of a turn in which frames of several messages came in (on any link). */
  #inTurn = false;
  #waitingDrain = false;
  #writableWaiters: (() => void)[] = [];
  #connecting: Promise<void> | undefined;
  #lastFailure = -Infinity;
  #lastSeen = 0;
  #heartbeat: NodeJS.Timeout | undefined;
  #decodeContext: DecodeContext | undefined;

  constructor(host: PeerHost, node: string) {
    this.#host = host;
    this.node = node;
  }

  /** Nothing is queued, awaited or being dialed on this link (the node knows what it waits for itself). */
  get idle(): boolean {
    return this.#queued === 0 && this.#writableWaiters.length === 0 && this.#connecting === undefined;
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
    this.#scheduleFlush();
  }

  /**
   * Queues one message for the peer; it leaves with the rest of this turn's messages.
   * Throws OverloadedError when the queue is full, NodeDownError when the peer is known down.
   */
  send(message: unknown[], onFailure?: SendFailure): void {
    this.#admit();
    this.#queue.push(message);
    this.#failures.push(onFailure);
    this.#queued++;
    this.#queuedOne();
  }

  /**
   * Queues a one-way message without a sender for the actor at `path` on the peer (its wire
   * path): consecutive ones to the same actor leave as one run, so the peer reads the path and
   * finds the actor once per run, not once per message. Throws as {@link send} does.
   */
  dispatch(path: string, message: unknown): void {
    this.#admit();
    const last = this.#queue[this.#queue.length - 1];
    if (last !== undefined && last[0] === OP_DISPATCH_RUN && last[1] === path && (last[2] as unknown[]).length < MAX_RUN) {
      (last[2] as unknown[]).push(message);
    } else {
      this.#queue.push([OP_DISPATCH_RUN, path, [message]]);
      this.#failures.push(undefined);
    }
    this.#queued++;
    this.#queuedOne();
  }

  /** Throws NodeDownError when the peer is known down (dialing it again once in a while), OverloadedError when the queue is full. */
  #admit(): void {
    if (this.state === 'down' || this.state === 'idle') {
      if (performance.now() - this.#lastFailure < REDIAL_AFTER_MS) {
        throw new NodeDownError(`node ${this.node} is down`, { details: { node: this.node } });
      }
      this.connect().catch(() => {});
    }
    if (this.#queued >= this.#host.maxQueuedMessages) {
      throw new OverloadedError(
        `${this.#queued} messages are queued for ${this.node}, which does not keep up; await whenWritable() before sending more`,
        { details: { node: this.node } },
      );
    }
  }

  /** A message was queued: when it leaves. */
  #queuedOne(): void {
    const turn = this.#host.writeTurn;
    if (turn.receiving) {
      // In a turn that received a frame of several messages (on any link of this node): what
      // handling it makes leaves in one frame per link at the end of the turn.
      if (!this.#inTurn && this.state === 'up') {
        this.#inTurn = true;
        turn.defer(this);
      }
    } else if (this.#queued === 1 && !this.#flushScheduled && !this.#flushing && this.state === 'up' && performance.now() - this.#lastFrameAt > EAGER_GAP_MS) {
      // A lone message on a quiet link leaves at once: request/response latency pays no loop turn.
      this.#flush();
    } else {
      this.#scheduleFlush();
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
    if (this.#writable()) return Promise.resolve();
    return new Promise((resolve) => this.#writableWaiters.push(resolve));
  }

  /** Closes the link on purpose; pending work fails with NodeDownError. */
  close(code: number, reason: string): void {
    const conn = this.#conn;
    if (conn) {
      // Let queued messages leave first: a graceful close is ordered after them.
      this.#flush();
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

  #writable(): boolean {
    return this.#queued < this.#host.maxQueuedMessages / 2 && (this.#conn?.ws.bufferedAmount ?? 0) < HIGH_WATER;
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

  /** The end of a turn that received frames of several messages: what was queued in it leaves now. */
  endOfTurn(): void {
    this.#inTurn = false;
    this.#guard(() => this.#flush());
  }

  /** Runs a listener's work; an exception (a bug, or a user's event listener throwing) is logged, never rethrown. */
  #guard(work: () => void): void {
    try {
      work();
    } catch (e) {
      this.#host.logger.error(`link to ${this.node}: ${(e as Error)?.stack ?? describe(e)}`);
    }
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled || this.state !== 'up') return;
    this.#flushScheduled = true;
    this.#queuedAtTick = 0;
    this.#firstQueuedAt = performance.now();
    setImmediate(this.#tick);
  }

  /**
   * Flushes on a later loop turn, and keeps waiting one more turn while the queue still grows:
   * nact hands an actor one message per turn, so a busy actor's replies would otherwise each
   * cost a frame, and on this kind of machine every socket write costs more than the message.
   * Bounded by COALESCE_MAX_MESSAGES and COALESCE_MAX_MS.
   */
  readonly #tick = (): void => {
    const queued = this.#queued;
    if (
      queued > this.#queuedAtTick &&
      queued < COALESCE_MAX_MESSAGES &&
      performance.now() - this.#firstQueuedAt < COALESCE_MAX_MS
    ) {
      this.#queuedAtTick = queued;
      setImmediate(this.#tick);
      return;
    }
    this.#flushScheduled = false;
    this.#flush();
  };

  #flush(): void {
    const conn = this.#conn;
    if (!conn || this.#queue.length === 0 || this.#flushing) return;
    // A socket that is closing (its peer reset it; our close event is still to come) gets
    // nothing more: what is queued fails with the link, where it is reported, not written away.
    if (conn.ws.readyState !== conn.ws.OPEN) return;
    if (conn.ws.bufferedAmount > HIGH_WATER) {
      this.#waitingDrain = true;
      return;
    }
    this.#flushing = true;
    const batch = this.#queue;
    const failures = this.#failures;
    const messages = this.#queued;
    this.#queue = [];
    this.#failures = [];
    this.#queued = 0;
    try {
      let frame: Buffer | undefined;
      try {
        frame = encode(batch);
      } catch {
        frame = undefined; // one message is bad: find it below without losing the others
      }
      if (frame !== undefined && frame.length <= conn.maxPayload) {
        this.#write(conn, frame, messages);
      } else {
        // Slow path: only the bad messages fail, the rest leave in frames that fit.
        const { frames, unsent } = framesOneByOne(batch, conn.maxPayload, this.node);
        for (const f of frames) this.#write(conn, f.frame, f.messages);
        for (const u of unsent) this.#report(failures[u.index], u.message, u.error);
      }
    } finally {
      this.#flushing = false;
    }
    // A failure callback may have queued a message (an error reply) while this flush ran.
    if (this.#queue.length > 0) this.#scheduleFlush();
    this.#notifyWritable();
  }

  #report(onFailure: SendFailure | undefined, message: unknown[], error: Error): void {
    if (onFailure) this.#guard(() => onFailure(error, message));
    else this.#host.logger.warn(`message to ${this.node} dropped: ${error.message}`);
  }

  #write(conn: Connection, frame: Buffer, messages: number): void {
    this.#lastFrameAt = performance.now();
    if (linkTrafficChannel.hasSubscribers) linkTrafficChannel.publish({ node: this.#host.name, peer: this.node, direction: 'out', bytes: frame.length, messages });
    conn.ws.send(frame, { binary: true }, () => {
      if (this.#waitingDrain && conn.ws.bufferedAmount <= HIGH_WATER / 2) {
        this.#waitingDrain = false;
        this.#scheduleFlush();
      }
      this.#notifyWritable();
    });
  }

  #notifyWritable(): void {
    if (this.#writableWaiters.length === 0 || !this.#writable()) return;
    const waiters = this.#writableWaiters;
    this.#writableWaiters = [];
    for (const resolve of waiters) resolve();
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
    const undelivered = replacing ? [] : this.#queue;
    const failures = replacing ? [] : this.#failures;
    if (!replacing) {
      this.#queue = [];
      this.#failures = [];
      this.#queued = 0;
    }
    for (let i = 0; i < failures.length; i++) {
      const onFailure = failures[i];
      if (onFailure) this.#guard(() => onFailure(reason, undelivered[i]!));
    }
    const unreported = undelivered.filter((_, i) => failures[i] === undefined);
    const waiters = this.#writableWaiters;
    this.#writableWaiters = [];
    for (const resolve of waiters) resolve();
    if (conn) this.#host.logger.info(`${reason.message}`);
    this.#guard(() => this.#host.peerDown(this, reason, unreported, conn !== undefined));
  }
}
