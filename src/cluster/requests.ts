/**
 * The request/reply service layer of a node: `handle(service, fn)` on one side, `request(node,
 * service, payload)` on the other. Replies are correlated in the node's one reply table; serving
 * never throws (a reply to a requester that is gone is dropped and counted, a result that cannot
 * be sent becomes the error saying why), and a non-Error thrown by a handler travels as a
 * RemoteError carrying the value.
 */
import { AbortError, EncodeError, NodeDownError, PayloadTooLargeError, ProtocolError, QueryTimeoutError } from '../errors.js';
import { onAbort } from '../abort.js';
import type { Logger } from '../log.js';
import { asError } from './codec.js';
import type { Deadline, Deadlines } from './deadlines.js';
import { InboundRequest, type ServiceHandler } from './inbound-request.js';
import type { Peer } from './peer.js';
import type { Pending, ReplyTable } from './replies.js';
import { OP_CANCEL, OP_REPLY, OP_REQUEST, describe } from './wire.js';

export interface RequestOptions {
  /** Milliseconds before the request rejects with QueryTimeoutError (and is cancelled remotely). */
  timeout?: number;
  signal?: AbortSignal;
}

/** What the request layer needs from its node. */
export interface RequestsHost {
  readonly name: string;
  readonly logger: Logger;
  readonly replies: ReplyTable;
  readonly deadlines: Deadlines;
}

/**
 * Receives the outcome of a request made with {@link Requests.send}: the caller's own object,
 * settled once, instead of a promise and its resolving functions per request.
 */
export interface ReplyReceiver {
  /** The reply (`ok`), or why there is none: the handler's error, a timeout, an abort, the link going down. */
  settled(ok: boolean, value: unknown): void;
}

/**
 * A request this node made, waiting for its reply: the reply table's entry itself (and its own
 * deadline handle), settled once by the reply, the link going down, its deadline or its signal.
 */
class OutboundRequest implements Pending {
  readonly kind = 'request';
  readonly peer: Peer;
  readonly id: number;
  readonly #host: RequestsHost;
  readonly #service: string;
  readonly #receiver: ReplyReceiver;
  #timeout = 0;
  #deadline: Deadline | undefined = undefined;
  #unsubscribe: (() => void) | undefined = undefined;

  constructor(host: RequestsHost, peer: Peer, service: string, receiver: ReplyReceiver) {
    this.#host = host;
    this.peer = peer;
    this.#service = service;
    this.#receiver = receiver;
    this.id = host.replies.add(this);
  }

  expireAfter(timeout: number): void {
    this.#timeout = timeout;
    this.#deadline = this.#host.deadlines.after(timeout, this);
  }

  /** The deadline passed (see {@link Expiring}). */
  expire(): void {
    this.#cancel(new QueryTimeoutError(`request "${this.#service}" to ${this.peer.node} timed out after ${this.#timeout} ms`));
  }

  abortOn(signal: AbortSignal): void {
    this.#unsubscribe = onAbort(signal, () =>
      this.#cancel(new AbortError(`request "${this.#service}" to ${this.peer.node} aborted`, { cause: signal.reason })));
  }

  settle(ok: boolean, value: unknown): void {
    this.#deadline?.cancel();
    this.#unsubscribe?.();
    this.#receiver.settled(ok, value);
  }

  #cancel(error: Error): void {
    const { replies } = this.#host;
    if (!replies.has(this.id)) return;
    // The handler learns why (deadline or abort), without the local cause, which may not encode.
    const why = error instanceof QueryTimeoutError ? new QueryTimeoutError(error.message) : new AbortError(error.message);
    this.peer.trySend([OP_CANCEL, this.id, why]);
    replies.settle(this.id, 'request', false, error);
  }
}

/** The receiver behind the promise that {@link Requests.request} returns. */
class PromiseReceiver implements ReplyReceiver {
  readonly #resolve: (value: unknown) => void;
  readonly #reject: (error: unknown) => void;

  constructor(resolve: (value: unknown) => void, reject: (error: unknown) => void) {
    this.#resolve = resolve;
    this.#reject = reject;
  }

  settled(ok: boolean, value: unknown): void {
    if (ok) this.#resolve(value);
    else this.#reject(value);
  }
}

/** The requests of one peer still being served. */
interface Running {
  size: number;
  readonly byId: Record<number, InboundRequest | undefined>;
}

export class Requests {
  readonly #host: RequestsHost;
  readonly #services = new Map<string, ServiceHandler>();
  /**
   * Requests peers made to this node that are still running, by peer, then by id in a number
   * dictionary: not a Map, whose churn (an add and a delete per request under ever-new ids) leaves
   * a chain of obsolete tables that keeps requests alive through young-generation GCs (see
   * ReplyTable).
   */
  readonly #inbound = new Map<Peer, Running>();
  #dropped = 0;

  constructor(host: RequestsHost) {
    this.#host = host;
  }

  /** Replies dropped because their requester was gone or overloaded. */
  get droppedReplies(): number {
    return this.#dropped;
  }

  /** Requests from `peer` are still being served. */
  servingFor(peer: Peer): boolean {
    return this.#inbound.has(peer);
  }

  handle(service: string, handler: ServiceHandler): void {
    this.#services.set(service, handler);
  }

  /** Sends a request over `peer` and resolves to its result. */
  request(peer: Peer, service: string, payload: unknown, options: RequestOptions): Promise<unknown> {
    return new Promise((resolve, reject) => this.send(peer, service, payload, options.timeout, options.signal, new PromiseReceiver(resolve, reject)));
  }

  /**
   * Sends a request over `peer`; `receiver` is settled exactly once (possibly before this
   * returns, when the request cannot be sent). No promise is made: the caller's hot path.
   */
  send(peer: Peer, service: string, payload: unknown, timeout: number | undefined, signal: AbortSignal | undefined, receiver: ReplyReceiver): void {
    if (signal?.aborted) {
      receiver.settled(false, new AbortError(`request "${service}" to ${peer.node} aborted before it was sent`));
      return;
    }
    const request = new OutboundRequest(this.#host, peer, service, receiver);
    const { id } = request;
    if (timeout !== undefined && timeout !== Infinity) request.expireAfter(timeout);
    if (signal) request.abortOn(signal);
    try {
      peer.send([OP_REQUEST, id, service, payload], this.#sendFailed);
    } catch (error) {
      this.#host.replies.settle(id, 'request', false, error);
    }
  }

  /** A request could not be sent: one function for all of them (the message names its id). */
  readonly #sendFailed = (error: Error, message: unknown[]): void => {
    this.#host.replies.settle(message[1], 'request', false, error);
  };

  /** OP_REPLY from `peer`: settles our request, if it asked that peer. */
  replied(peer: Peer, id: unknown, ok: unknown, value: unknown): void {
    const success = ok === true;
    this.#host.replies.settle(id, 'request', success, success ? value : asError(value, `a request to ${peer.node}`), peer);
  }

  /** OP_CANCEL from `peer`: the requester gave up (deadline, abort). */
  cancelled(peer: Peer, id: unknown, reason: unknown): void {
    const request = typeof id === 'number' ? this.#inbound.get(peer)?.byId[id] : undefined;
    try {
      request?.cancel(reason instanceof Error ? reason : new AbortError('cancelled by the requester'));
    } catch (error) {
      this.#host.logger.warn(`a cancel listener of a request from ${peer.node} threw: ${(error as Error)?.message ?? describe(error)}`);
    }
  }

  /**
   * OP_REQUEST from `peer`: runs the service's handler and replies, whatever happens. A handler
   * that returns a value (not a promise) is answered at once; only one that returns a promise is
   * registered, so that the requester can cancel it until it settles.
   */
  serve(peer: Peer, id: unknown, service: unknown, payload: unknown): void {
    if (typeof id !== 'number' || typeof service !== 'string') {
      peer.protocolError(new ProtocolError('malformed request'));
      return;
    }
    const handler = this.#services.get(service);
    if (!handler) {
      this.#sendReply(peer, id, service, false, new ProtocolError(`unknown service "${service}" on ${this.#host.name}`));
      return;
    }
    const context = new InboundRequest(peer.node);
    let result: unknown;
    try {
      result = handler(payload, context);
    } catch (error) {
      this.#sendReply(peer, id, service, false, asError(error, `"${service}" on ${this.#host.name}`));
      return;
    }
    if (!(result instanceof Promise)) {
      this.#sendReply(peer, id, service, true, result);
      return;
    }
    let running = this.#inbound.get(peer);
    if (!running) this.#inbound.set(peer, (running = { size: 0, byId: Object.create(null) as Running['byId'] }));
    if (running.byId[id] === undefined) running.size++;
    running.byId[id] = context;
    result.then(
      (value) => this.#settled(peer, id, service, context, true, value),
      (error) => this.#settled(peer, id, service, context, false, error),
    );
  }

  /** A handler's promise settled: the reply goes, unless another request took its id meanwhile. */
  #settled(peer: Peer, id: number, service: string, context: InboundRequest, ok: boolean, value: unknown): void {
    const running = this.#inbound.get(peer);
    if (running?.byId[id] !== context) return;
    delete running.byId[id];
    if (--running.size === 0) this.#inbound.delete(peer);
    this.#sendReply(peer, id, service, ok, ok ? value : asError(value, `"${service}" on ${this.#host.name}`));
  }

  /**
   * Sends a reply; never throws. A requester that is gone gets nothing (the reply is counted as
   * dropped); a value that cannot be sent is replaced by the error saying why, so the requester
   * learns at once instead of at its deadline.
   */
  #sendReply(peer: Peer, id: number, service: string, ok: boolean, value: unknown): void {
    if (peer.state !== 'up') return this.#drop(peer, id, service, `the link is ${peer.state}`);
    const sent = peer.trySend([OP_REPLY, id, ok, value], (error) => {
      if (error instanceof NodeDownError) return this.#drop(peer, id, service, error.message);
      const what = ok ? 'result' : 'error';
      const where = `the ${what} of "${service}" on ${this.#host.name} cannot be sent: ${error.message}`;
      const why = error instanceof PayloadTooLargeError ? new PayloadTooLargeError(where, { details: error.details }) : new EncodeError(where);
      if (!peer.trySend([OP_REPLY, id, false, why], (again) => this.#drop(peer, id, service, again.message))) {
        this.#drop(peer, id, service, 'the link is down or overloaded');
      }
    });
    if (!sent) this.#drop(peer, id, service, 'the link is down or overloaded');
  }

  #drop(peer: Peer, id: number, service: string, why: string): void {
    this.#dropped++;
    this.#host.logger.debug(`reply to "${service}" #${id} of ${peer.node} dropped: ${why}`);
  }
}
