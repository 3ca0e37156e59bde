/**
 * The services a runner offers its parent: run a call, place an actor, drain on request. Each
 * call is registered while it runs, so that an error its work leaves unhandled can be traced
 * back to it (see faults.ts).
 */
import type { ClusterNode, RequestContext } from '../cluster/node.js';
import { Deadlines } from '../cluster/deadlines.js';
import { CallTimeoutError, ProtocolError, QueryTimeoutError, RunnerDownError } from '../errors.js';
import type { ParentInfo } from '../flame/parent.js';
import type { ShippedFunction } from '../flame/fn-ref.js';
import { SERVICE, UNKNOWN_FUNCTION, type CallRequest, type PlaceReply, type PlaceRequest, type ShutdownRequest } from '../flame/protocol.js';
import { CallCancellation, startCall } from './call-context.js';
import type { FunctionLoader } from './fn-loader.js';
import type { PlacedActors } from './placement.js';
import { installStreamServices } from './stream-service.js';
import type { Terminator } from './terminator.js';

/** A call running on this runner. */
export interface ActiveCall {
  /** Where its code lives, as stack traces name it: `flame://fn/<hash>.js` or the module's URL. */
  readonly origin: string;
  /** Fails the call now with `error` (its work is left to finish or not). */
  fail(error: Error): void;
}

export interface RunnerServices {
  /** Calls running now. */
  readonly active: Iterable<ActiveCall>;
}

/**
 * The calls running now: an array with swap-removal, not a Set. A Set with an add and a delete per
 * call rehashes into a new table every few hundred calls and links the old table to the new one
 * (for live iterators); once an old table had been promoted to the old generation, that dead chain
 * kept every later table, and every call in them, alive through each young-generation GC (a runner
 * of async functions promoted 1-2 MB per scavenge). An array's old backing store links to nothing.
 */
class ActiveCalls implements Iterable<ActiveCall> {
  readonly #calls: RunningCall[] = [];

  add(call: RunningCall): void {
    call.slot = this.#calls.length;
    this.#calls.push(call);
  }

  delete(call: RunningCall): void {
    const slot = call.slot;
    if (slot < 0 || this.#calls[slot] !== call) return;
    const last = this.#calls.pop()!;
    if (last !== call) {
      this.#calls[slot] = last;
      last.slot = slot;
    }
    call.slot = -1;
  }

  [Symbol.iterator](): Iterator<ActiveCall> {
    return this.#calls[Symbol.iterator]();
  }
}

export interface RunnerServicesOptions {
  node: ClusterNode;
  info: ParentInfo;
  loader: FunctionLoader;
  terminator: Terminator;
  placement: PlacedActors;
}

export function installRunnerServices({ node, info, loader, terminator, placement }: RunnerServicesOptions): RunnerServices {
  const active = new ActiveCalls();
  // One timer per distinct deadline, not a Node timer armed and cleared by every call.
  const deadlines = new Deadlines();

  const refuseWhileDraining = (what: string) => {
    if (terminator.draining) {
      throw new RunnerDownError(`runner ${info.runner} is shutting down (${terminator.draining}) and takes no new ${what}`);
    }
  };

  /** A call that goes on after its function returned a promise: tracked until it settles. */
  const follow = (request: CallRequest, context: RequestContext, cancellation: CallCancellation, result: PromiseLike<unknown>): Promise<unknown> =>
    new Promise((resolve, reject) => {
      terminator.callStarted();
      const call = new RunningCall(request, loader, cancellation, info.runner, reject);
      active.add(call);
      context.onCancel((reason) => call.cancel(reason));
      const deadline = request.timeout >= 0 ? deadlines.after(request.timeout, call) : undefined;
      const ended = () => {
        deadline?.cancel();
        active.delete(call);
        terminator.callEnded();
      };
      // A foreign thenable's `then` runs later (as `await` would), where its throw is a rejection.
      (result instanceof Promise ? result : Promise.resolve(result)).then(
        (value) => {
          ended();
          resolve(value);
        },
        (error: unknown) => {
          ended();
          reject(loader.importFailure(error) ?? error);
        },
      );
    });

  node.handle(SERVICE.call, (payload, context) => {
    const request = payload as CallRequest;
    refuseWhileDraining('calls');
    // A compiled closure starts at once; a function that returns a value (not a promise) is
    // answered in the same turn, with nothing registered, armed or allocated for it but its
    // cancellation (which `callSignal()` reads while it starts).
    const fn = loader.cached(request.fn);
    if (fn === undefined) {
      if (typeof request.fn !== 'number') return load(request, request.fn, context);
      // Its parent sends it again in full on this answer.
      throw new ProtocolError(`closure #${request.fn} is not on runner ${info.runner} (any more): send it in full`, {
        details: { reason: UNKNOWN_FUNCTION, id: request.fn },
      });
    }
    const cancellation = new CallCancellation();
    let result: unknown;
    try {
      result = startCall(cancellation, fn, argsOf(request));
    } catch (error) {
      terminator.quickCall();
      throw loader.importFailure(error) ?? error;
    }
    if (isThenable(result)) return follow(request, context, cancellation, result);
    terminator.quickCall();
    return result;
  });

  /**
   * A function not compiled or imported yet: the call holds the runner, and its deadline and the
   * caller's cancel apply, while it loads.
   */
  const load = (request: CallRequest, shipped: ShippedFunction, context: RequestContext): Promise<unknown> => {
    const cancellation = new CallCancellation();
    const started = loader.load(shipped).then((fn) => startCall(cancellation, fn, argsOf(request)));
    return follow(request, context, cancellation, started);
  };

  node.handle(SERVICE.place, async (payload) => {
    const request = payload as PlaceRequest;
    refuseWhileDraining('actors');
    const factory = await loader.load(request.fn);
    const placed = await placement.place(factory, Array.isArray(request.args) ? request.args : [], request.link === true);
    terminator.childPlaced();
    return placed satisfies PlaceReply;
  });

  installStreamServices({ node, runner: info.runner, loader, terminator, logger: node.logger, refuseWhileDraining });

  node.handle(SERVICE.shutdown, (payload) => {
    const reason = (payload as ShutdownRequest)?.reason ?? 'asked by the parent';
    void terminator.drain(reason);
    return true;
  });

  return { active };
}

const NO_ARGS: unknown[] = [];

/** The call's arguments (a peer may send anything). */
function argsOf(request: CallRequest): unknown[] {
  return Array.isArray(request.args) ? request.args : NO_ARGS;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value instanceof Promise || (typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function');
}

/**
 * A call whose function returned a promise, while it runs: its own deadline handle, and what a
 * fault traced to it fails. Its origin is only worked out when a fault needs it.
 */
class RunningCall implements ActiveCall {
  /** Where it is in its {@link ActiveCalls} (-1: not there). */
  slot = -1;
  readonly #request: CallRequest;
  readonly #loader: FunctionLoader;
  readonly #cancellation: CallCancellation;
  readonly #runner: string;
  readonly #reject: (error: Error) => void;

  constructor(request: CallRequest, loader: FunctionLoader, cancellation: CallCancellation, runner: string, reject: (error: Error) => void) {
    this.#request = request;
    this.#loader = loader;
    this.#cancellation = cancellation;
    this.#runner = runner;
    this.#reject = reject;
  }

  get origin(): string {
    return this.#loader.origin(this.#request.fn);
  }

  fail(error: Error): void {
    this.#reject(error);
  }

  /** The caller cancelled (its deadline or its signal). */
  cancel(reason: Error): void {
    this.#cancellation.abort(reason instanceof QueryTimeoutError ? new CallTimeoutError(`call exceeded its deadline on ${this.#runner} (the caller's timeout)`) : reason);
  }

  /** The call's own deadline passed (see Deadlines). */
  expire(): void {
    this.#cancellation.abort(new CallTimeoutError(`call exceeded its deadline of ${this.#request.timeout} ms on ${this.#runner}`));
  }
}
