/**
 * The outgoing queue of one link: what is queued for a remote node, when it leaves and in how many
 * frames. Messages produced in one event-loop turn go out as one frame (one msgpack array):
 * per-frame syscalls, not encoding, bound throughput (a frame per message measured 12-20x slower
 * than one frame per turn on a 2-vCPU machine). A peer that does not keep up makes the queue fill;
 * past `maxQueuedMessages` sends fail with OverloadedError, and `whenWritable()` lets senders wait.
 *
 * The link (peer.ts) owns the connection and decides whether sending is allowed at all; it hands
 * the socket over when the link comes up ({@link Outbox.attach}) and takes it back when the link
 * fails ({@link Outbox.linkDown}), and the outbox writes to whatever socket it has.
 */
import type { WebSocket } from 'ws';
import { encode } from './codec.js';
import { OverloadedError } from '../errors.js';
import type { Logger } from '../log.js';
import { linkTrafficChannel } from '../observability/diagnostics.js';
import { framesOneByOne } from './frames.js';
import { OP_DISPATCH_RUN, describe } from './wire.js';
import type { TurnWriter, WriteTurn } from './write-turn.js';

/**
 * Called when a queued message could not be sent (encoding failed, too large, peer down), with
 * that message: one function can serve every message that carries its own id.
 */
export type SendFailure = (error: Error, message: unknown[]) => void;

/** What the outbox writes to: the socket of an authenticated link and the largest frame its peer accepts. */
export interface OutboxSocket {
  ws: WebSocket;
  maxPayload: number;
}

/** What an outbox needs from its node. */
export interface OutboxHost {
  readonly name: string;
  readonly logger: Logger;
  readonly maxQueuedMessages: number;
  /** The node's end of turn, shared by its links (see write-turn.ts). */
  readonly writeTurn: WriteTurn;
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

/** Runs a listener's work; an exception (a bug, or a user's callback throwing) is logged, never rethrown. */
export function guard(logger: Logger, node: string, work: () => void): void {
  try {
    work();
  } catch (e) {
    logger.error(`link to ${node}: ${(e as Error)?.stack ?? describe(e)}`);
  }
}

export class Outbox implements TurnWriter {
  readonly #host: OutboxHost;
  /** The remote node's name, for errors and logs. */
  readonly #node: string;
  /** The socket to write to while the link is up; undefined while it is not (messages wait). */
  #socket: OutboxSocket | undefined;
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

  constructor(host: OutboxHost, node: string) {
    this.#host = host;
    this.#node = node;
  }

  /** Nothing is queued or awaited. */
  get idle(): boolean {
    return this.#queued === 0 && this.#writableWaiters.length === 0;
  }

  /** The link is up on `socket`: messages go out on it (call {@link flushLater} once the link is announced). */
  attach(socket: OutboxSocket): void {
    this.#socket = socket;
  }

  /**
   * Queues one message; it leaves with the rest of this turn's messages. Throws OverloadedError
   * when the queue is full (the link has checked that it may be used).
   */
  send(message: unknown[], onFailure: SendFailure | undefined): void {
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

  /** Throws OverloadedError when the queue is full. */
  #admit(): void {
    if (this.#queued >= this.#host.maxQueuedMessages) {
      throw new OverloadedError(
        `${this.#queued} messages are queued for ${this.#node}, which does not keep up; await whenWritable() before sending more`,
        { details: { node: this.#node } },
      );
    }
  }

  /** A message was queued: when it leaves. */
  #queuedOne(): void {
    const turn = this.#host.writeTurn;
    if (turn.receiving) {
      // In a turn that received a frame of several messages (on any link of this node): what
      // handling it makes leaves in one frame per link at the end of the turn.
      if (!this.#inTurn && this.#socket !== undefined) {
        this.#inTurn = true;
        turn.defer(this);
      }
    } else if (this.#queued === 1 && !this.#flushScheduled && !this.#flushing && this.#socket !== undefined && performance.now() - this.#lastFrameAt > EAGER_GAP_MS) {
      // A lone message on a quiet link leaves at once: request/response latency pays no loop turn.
      this.flush();
    } else {
      this.flushLater();
    }
  }

  /** Resolves once the queue and the socket buffer have room again. */
  whenWritable(): Promise<void> {
    if (this.#writable()) return Promise.resolve();
    return new Promise((resolve) => this.#writableWaiters.push(resolve));
  }

  #writable(): boolean {
    return this.#queued < this.#host.maxQueuedMessages / 2 && (this.#socket?.ws.bufferedAmount ?? 0) < HIGH_WATER;
  }

  /** The end of a turn that received frames of several messages: what was queued in it leaves now. */
  endOfTurn(): void {
    this.#inTurn = false;
    guard(this.#host.logger, this.#node, () => this.flush());
  }

  /** Flushes on a later loop turn (unless one is already due); nothing while the link is not up. */
  flushLater(): void {
    if (this.#flushScheduled || this.#socket === undefined) return;
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
    this.flush();
  };

  /** Writes what is queued now (a graceful close is ordered after it); waits while the socket is full. */
  flush(): void {
    const socket = this.#socket;
    if (!socket || this.#queue.length === 0 || this.#flushing) return;
    // A socket that is closing (its peer reset it; our close event is still to come) gets
    // nothing more: what is queued fails with the link, where it is reported, not written away.
    if (socket.ws.readyState !== socket.ws.OPEN) return;
    if (socket.ws.bufferedAmount > HIGH_WATER) {
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
      if (frame !== undefined && frame.length <= socket.maxPayload) {
        this.#write(socket, frame, messages);
      } else {
        // Slow path: only the bad messages fail, the rest leave in frames that fit.
        const { frames, unsent } = framesOneByOne(batch, socket.maxPayload, this.#node);
        for (const f of frames) this.#write(socket, f.frame, f.messages);
        for (const u of unsent) this.#report(failures[u.index], u.message, u.error);
      }
    } finally {
      this.#flushing = false;
    }
    // A failure callback may have queued a message (an error reply) while this flush ran.
    if (this.#queue.length > 0) this.flushLater();
    this.#notifyWritable();
  }

  #report(onFailure: SendFailure | undefined, message: unknown[], error: Error): void {
    if (onFailure) guard(this.#host.logger, this.#node, () => onFailure(error, message));
    else this.#host.logger.warn(`message to ${this.#node} dropped: ${error.message}`);
  }

  #write(socket: OutboxSocket, frame: Buffer, messages: number): void {
    this.#lastFrameAt = performance.now();
    if (linkTrafficChannel.hasSubscribers) linkTrafficChannel.publish({ node: this.#host.name, peer: this.#node, direction: 'out', bytes: frame.length, messages });
    socket.ws.send(frame, { binary: true }, () => {
      if (this.#waitingDrain && socket.ws.bufferedAmount <= HIGH_WATER / 2) {
        this.#waitingDrain = false;
        this.flushLater();
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

  /**
   * The link is gone: nothing more is written, and whoever waits for room stops waiting. Unless
   * the link is `replacing`d by a new one (the queue then leaves on that), every queued message
   * fails with `reason` through its failure callback; returns those that had none, for the node
   * to report.
   */
  linkDown(reason: Error, replacing: boolean): unknown[][] {
    this.#socket = undefined;
    const undelivered = replacing ? [] : this.#queue;
    const failures = replacing ? [] : this.#failures;
    if (!replacing) {
      this.#queue = [];
      this.#failures = [];
      this.#queued = 0;
    }
    for (let i = 0; i < failures.length; i++) {
      const onFailure = failures[i];
      if (onFailure) guard(this.#host.logger, this.#node, () => onFailure(reason, undelivered[i]!));
    }
    const unreported = undelivered.filter((_, i) => failures[i] === undefined);
    const waiters = this.#writableWaiters;
    this.#writableWaiters = [];
    for (const resolve of waiters) resolve();
    return unreported;
  }
}
