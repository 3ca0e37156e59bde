/**
 * Every error flame-actors raises is a {@link FlameError} with a stable `code` (`FLAME_ERR_*`).
 * Errors cross the wire between parent and runners, where `instanceof` cannot be relied upon
 * for user classes, so match on `code`:
 *
 * ```ts
 * try { await pool.call(fn) } catch (e) { if (isFlameError(e, 'FLAME_ERR_RUNNER_DOWN')) retry() }
 * ```
 */

/** Free-form, wire-safe details attached to an error (primitive values, arrays, plain objects). */
export type ErrorDetails = Record<string, unknown>;

export interface FlameErrorOptions {
  cause?: unknown;
  details?: ErrorDetails;
}

/** Base class of every error this library raises. */
export class FlameError extends Error {
  /** Stable machine-readable code, `FLAME_ERR_*`. */
  readonly code: string = 'FLAME_ERR';
  /** Extra context (node names, option names, limits...). */
  readonly details: ErrorDetails;

  constructor(message: string, options: FlameErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.details = options.details ?? {};
  }

  override get name(): string {
    return this.constructor.name;
  }
}

/** An option given to a public function is unknown or has an invalid value. */
export class InvalidOptionError extends FlameError {
  override readonly code = 'FLAME_ERR_INVALID_OPTION';
}

/** A required environment variable is missing or malformed. */
export class MissingEnvError extends FlameError {
  override readonly code = 'FLAME_ERR_MISSING_ENV';
}

/** A peer node could not be reached (refused, unresolvable, handshake timed out). */
export class ConnectError extends FlameError {
  override readonly code = 'FLAME_ERR_CONNECT';
}

/** A peer failed the cookie challenge-response (wrong or missing cookie). */
export class AuthenticationError extends FlameError {
  override readonly code = 'FLAME_ERR_AUTH';
}

/** The peer node went down (socket closed or heartbeat missed) while something was pending on it. */
export class NodeDownError extends FlameError {
  override readonly code = 'FLAME_ERR_NODE_DOWN';
}

/** A message is larger than the link's `maxPayload`; it was not sent. */
export class PayloadTooLargeError extends FlameError {
  override readonly code = 'FLAME_ERR_PAYLOAD_TOO_LARGE';
}

/** A peer sent something that is not a valid frame of this protocol. */
export class ProtocolError extends FlameError {
  override readonly code = 'FLAME_ERR_PROTOCOL';
}

/** A value could not be encoded for the wire (e.g. a function, a circular structure). */
export class EncodeError extends FlameError {
  override readonly code = 'FLAME_ERR_ENCODE';
}

/** The target actor of a message or query does not exist (stopped, or never spawned) on its node. */
export class ActorNotFoundError extends FlameError {
  override readonly code = 'FLAME_ERR_NO_ACTOR';
}

/** The local node is stopped and takes no more work. */
export class NodeStoppedError extends FlameError {
  override readonly code = 'FLAME_ERR_NODE_STOPPED';
}

/** A `query` to a remote actor got no answer within its timeout. */
export class QueryTimeoutError extends FlameError {
  override readonly code = 'FLAME_ERR_QUERY_TIMEOUT';
}

/** The outgoing buffer to a peer is full: the peer does not keep up; wait and retry. */
export class OverloadedError extends FlameError {
  override readonly code = 'FLAME_ERR_OVERLOADED';
}

/**
 * An error thrown on another node whose class does not exist here. Keeps the remote
 * class name in `name`, plus `message`, `code`, `cause` and the remote stack.
 */
export class RemoteError extends FlameError {
  /** The remote error's own `code` when it had one, else `FLAME_ERR_REMOTE`. */
  declare code: string;
  #remoteName = 'Error';
  constructor(message: string, options: FlameErrorOptions = {}) {
    super(message, options);
    this.code = 'FLAME_ERR_REMOTE';
  }
  override get name(): string {
    return this.#remoteName;
  }
  override set name(value: string) {
    this.#remoteName = value;
  }
}

/** A `moduleRef` could not be resolved on the runner (missing module or export). */
export class ModuleRefError extends FlameError {
  override readonly code = 'FLAME_ERR_MODULE_REF';
}

/** A closure cannot be shipped to a runner (captures, `this`, compiler helpers...). */
export class ClosureError extends FlameError {
  override readonly code = 'FLAME_ERR_CLOSURE';
}

/** The runner died or became unreachable while a call was running on it. */
export class RunnerDownError extends FlameError {
  override readonly code = 'FLAME_ERR_RUNNER_DOWN';
}

/** A call did not finish within its `timeout`; the remote work was cancelled. */
export class CallTimeoutError extends FlameError {
  override readonly code = 'FLAME_ERR_CALL_TIMEOUT';
}

/** A caller waited for capacity past its deadline while the pool was at `max`. */
export class CheckoutTimeoutError extends FlameError {
  override readonly code = 'FLAME_ERR_CHECKOUT_TIMEOUT';
}

/** The caller's `AbortSignal` fired; the remote work was cancelled. */
export class AbortError extends FlameError {
  override readonly code = 'FLAME_ERR_ABORTED';
}

/** A runner did not boot and connect back within `bootTimeout`. */
export class BootTimeoutError extends FlameError {
  override readonly code = 'FLAME_ERR_BOOT_TIMEOUT';
}

/** A runner failed to boot (the backend refused, the process exited, the pod failed). */
export class BootError extends FlameError {
  override readonly code = 'FLAME_ERR_BOOT';
}

/** The pool is stopped or stopping and takes no new work. */
export class PoolStoppedError extends FlameError {
  override readonly code = 'FLAME_ERR_POOL_STOPPED';
}

/** The pool's waiting queue is full (`maxQueue`). */
export class PoolOverloadedError extends FlameError {
  override readonly code = 'FLAME_ERR_POOL_OVERLOADED';
}

/** `FLAME_PARENT` is malformed or of an incompatible version. */
export class ParentTokenError extends FlameError {
  override readonly code = 'FLAME_ERR_PARENT_TOKEN';
}

/** A dependency the library shares with the app is missing or a second, different copy (e.g. two nact versions). */
export class DependencyError extends FlameError {
  override readonly code = 'FLAME_ERR_DEPENDENCY';
}

/** The Kubernetes API server refused a request (status, reason and message from its `Status`). */
export class KubernetesError extends FlameError {
  override readonly code = 'FLAME_ERR_KUBERNETES';
}

/** Every concrete error class, by code: used to rebuild errors that crossed the wire. */
export const errorClasses: ReadonlyMap<string, new (message: string, options?: FlameErrorOptions) => FlameError> =
  new Map(
    [
      InvalidOptionError,
      MissingEnvError,
      ConnectError,
      AuthenticationError,
      NodeDownError,
      ActorNotFoundError,
      NodeStoppedError,
      PayloadTooLargeError,
      ProtocolError,
      EncodeError,
      QueryTimeoutError,
      OverloadedError,
      ModuleRefError,
      ClosureError,
      RunnerDownError,
      CallTimeoutError,
      CheckoutTimeoutError,
      AbortError,
      BootTimeoutError,
      BootError,
      PoolStoppedError,
      PoolOverloadedError,
      ParentTokenError,
      DependencyError,
      KubernetesError,
    ].map((Class) => [new Class('').code, Class]),
  );

/** True when `error` is a FlameError, optionally with the given code. */
export function isFlameError(error: unknown, code?: string): error is FlameError {
  if (typeof error !== 'object' || error === null) return false;
  const c = (error as { code?: unknown }).code;
  if (typeof c !== 'string' || !c.startsWith('FLAME_ERR')) return false;
  return code === undefined || c === code;
}
