/**
 * The server side of one request a peer made to this node.
 */
/** Context given to a service handler. */
export interface RequestContext {
  /** The node that sent the request. */
  readonly peer: string;
  /** Aborted when the requester cancels (timeout, AbortSignal). Created on first use. */
  readonly signal: AbortSignal;
  /** Calls `listener(reason)` when the requester cancels: cheaper than `signal` on a hot path. */
  onCancel(listener: (reason: Error) => void): void;
}

/** Serves one request service: resolves to (or returns) its result, or throws. */
export type ServiceHandler = (payload: unknown, context: RequestContext) => unknown;

/**
 * A request being served. AbortControllers cost more than the rest of a small request on Node
 * 20, so the signal is only made when a handler asks for it.
 */
export class InboundRequest implements RequestContext {
  readonly peer: string;
  #controller: AbortController | undefined;
  #reason: Error | undefined;
  #listener: ((reason: Error) => void) | undefined;

  constructor(peer: string) {
    this.peer = peer;
  }

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#reason) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  onCancel(listener: (reason: Error) => void): void {
    if (this.#reason) listener(this.#reason);
    else this.#listener = listener;
  }

  cancel(reason: Error): void {
    if (this.#reason) return;
    this.#reason = reason;
    this.#controller?.abort(reason);
    this.#listener?.(reason);
  }
}
