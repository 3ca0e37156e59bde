/**
 * The server side of one request a peer made to this node.
 */
import type { RequestContext } from './node.js';

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
