/**
 * The services a runner offers its parent: run a call, place an actor, drain on request. Each
 * call is registered while it runs, so that an error its work leaves unhandled can be traced
 * back to it (see faults.ts).
 */
import type { ClusterNode, RequestContext } from '../cluster/node.js';
import { Deadlines } from '../cluster/deadlines.js';
import { CallTimeoutError, QueryTimeoutError, RunnerDownError } from '../errors.js';
import type { ParentInfo } from '../flame/parent.js';
import { SERVICE, type CallRequest, type PlaceReply, type PlaceRequest, type ShutdownRequest } from '../flame/protocol.js';
import { CallCancellation, startWith } from './call-context.js';
import type { FunctionLoader } from './fn-loader.js';
import type { Placement } from './placement.js';
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
  readonly active: ReadonlySet<ActiveCall>;
}

export interface RunnerServicesOptions {
  node: ClusterNode;
  info: ParentInfo;
  loader: FunctionLoader;
  terminator: Terminator;
  placement: Placement;
}

export function installRunnerServices({ node, info, loader, terminator, placement }: RunnerServicesOptions): RunnerServices {
  const active = new Set<ActiveCall>();
  // One timer per distinct deadline, not a Node timer armed and cleared by every call.
  const deadlines = new Deadlines();

  const refuseWhileDraining = (what: string) => {
    if (terminator.draining) {
      throw new RunnerDownError(`runner ${info.runner} is shutting down (${terminator.draining}) and takes no new ${what}`);
    }
  };

  node.handle(SERVICE.call, (payload, context) => {
    const request = payload as CallRequest;
    refuseWhileDraining('calls');
    terminator.callStarted();
    return new Promise((resolve, reject) => {
      const call = new RunningCall(request, loader, reject);
      active.add(call);
      runCall(request, context, loader, info.runner, deadlines).then(
        (value) => {
          active.delete(call);
          terminator.callEnded();
          resolve(value);
        },
        (error) => {
          active.delete(call);
          terminator.callEnded();
          reject(error);
        },
      );
    });
  });

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

/** A call while it runs; its origin is only worked out when a fault needs it. */
class RunningCall implements ActiveCall {
  readonly #request: CallRequest;
  readonly #loader: FunctionLoader;
  readonly #reject: (error: Error) => void;

  constructor(request: CallRequest, loader: FunctionLoader, reject: (error: Error) => void) {
    this.#request = request;
    this.#loader = loader;
    this.#reject = reject;
  }

  get origin(): string {
    return this.#loader.origin(this.#request.fn);
  }

  fail(error: Error): void {
    this.#reject(error);
  }
}

/** Loads and runs one call, cancelled when the caller cancels or its deadline passes. */
async function runCall(request: CallRequest, context: RequestContext, loader: FunctionLoader, runner: string, deadlines: Deadlines): Promise<unknown> {
  const cancellation = new CallCancellation();
  context.onCancel((reason) => cancellation.abort(reason instanceof QueryTimeoutError
    ? new CallTimeoutError(`call exceeded its deadline on ${runner} (the caller's timeout)`)
    : reason));
  const deadline = request.timeout >= 0
    ? deadlines.after(request.timeout, () => cancellation.abort(new CallTimeoutError(`call exceeded its deadline of ${request.timeout} ms on ${runner}`)))
    : undefined;
  try {
    // A cached closure starts without waiting a microtask for the loader.
    const fn = loader.cached(request.fn) ?? (await loader.load(request.fn));
    return await startWith(cancellation, () => fn(...(Array.isArray(request.args) ? request.args : [])));
  } catch (error) {
    throw loader.importFailure(error) ?? error;
  } finally {
    deadline?.cancel();
  }
}
