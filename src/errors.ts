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

/**
 * Typed fields live in `details`, which crosses the wire with the error, and are read back by
 * typed getters: a caller reads `error.runner`, never `error.details.runner as string`.
 */
function withFields(options: FlameErrorOptions, fields: Record<string, unknown>): FlameErrorOptions {
  const details: ErrorDetails = { ...options.details };
  for (const [key, value] of Object.entries(fields)) if (value !== undefined) details[key] = value;
  return { ...options, details };
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);

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
  constructor(message: string, options: FlameErrorOptions & { option?: string; expected?: string; suggestion?: string } = {}) {
    super(message, withFields(options, { option: options.option, expected: options.expected, suggestion: options.suggestion }));
  }
  /** The option (or argument) at fault, e.g. `maxConcurrency`. */
  get option(): string | undefined {
    return str(this.details.option);
  }
  /** What it accepts, in words. */
  get expected(): string | undefined {
    return str(this.details.expected);
  }
  /** For an unknown option: the known one it is closest to (a likely typo). */
  get suggestion(): string | undefined {
    return str(this.details.suggestion);
  }
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
  /** The node that went down, when known. */
  get node(): string | undefined {
    return str(this.details.node);
  }
}

/** A message is larger than the link's `maxPayload`; it was not sent. */
export class PayloadTooLargeError extends FlameError {
  override readonly code = 'FLAME_ERR_PAYLOAD_TOO_LARGE';
  /** Encoded size of the refused message, in bytes. */
  get size(): number | undefined {
    return num(this.details.size);
  }
  /** The limit it exceeded, in bytes. */
  get limit(): number | undefined {
    return num(this.details.limit);
  }
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
  /** The module specifier that failed, when known. */
  get module(): string | undefined {
    return str(this.details.module);
  }
}

/** A closure cannot be shipped to a runner (captures, `this`, compiler helpers...). */
export class ClosureError extends FlameError {
  override readonly code = 'FLAME_ERR_CLOSURE';
  /** The enclosing-scope variable the closure reads, when that is the problem. */
  get identifier(): string | undefined {
    return str(this.details.identifier);
  }
  /** Why it cannot be shipped, in one word (`captures`, `bound`, `native`...). */
  get reason(): string | undefined {
    return str(this.details.reason);
  }
}

/** The runner died or became unreachable while a call was running on it. */
export class RunnerDownError extends FlameError {
  override readonly code = 'FLAME_ERR_RUNNER_DOWN';
  constructor(message: string, options: FlameErrorOptions & { runner?: string; node?: string; attempts?: number } = {}) {
    super(message, withFields(options, { runner: options.runner, node: options.node, attempts: options.attempts }));
  }
  /** The runner's id in its pool. */
  get runner(): string | undefined {
    return str(this.details.runner);
  }
  /** The runner's node. */
  get node(): string | undefined {
    return str(this.details.node);
  }
  /** How many times the work was tried (more than 1 with `retries`). */
  get attempts(): number {
    return num(this.details.attempts) ?? 1;
  }
}

/** A call did not finish within its `timeout`; the remote work was cancelled. */
export class CallTimeoutError extends FlameError {
  override readonly code = 'FLAME_ERR_CALL_TIMEOUT';
  constructor(message: string, options: FlameErrorOptions & { runner?: string; timeout?: number } = {}) {
    super(message, withFields(options, { runner: options.runner, timeout: options.timeout }));
  }
  /** The runner the call ran on. */
  get runner(): string | undefined {
    return str(this.details.runner);
  }
  /** The deadline it passed, in ms. */
  get timeout(): number | undefined {
    return num(this.details.timeout);
  }
}

/** A caller waited for capacity past its deadline while the pool was at `max`. */
export class CheckoutTimeoutError extends FlameError {
  override readonly code = 'FLAME_ERR_CHECKOUT_TIMEOUT';
  constructor(message: string, options: FlameErrorOptions & { atMax?: boolean; max?: number; queued?: number } = {}) {
    super(message, withFields(options, { atMax: options.atMax, max: options.max, queued: options.queued }));
  }
  /** True when the pool was at `max` (raise `max` or `maxConcurrency`); false when runners were still booting. */
  get atMax(): boolean {
    return this.details.atMax === true;
  }
  /** The pool's `max`. */
  get max(): number | undefined {
    return num(this.details.max);
  }
  /** Callers waiting at that moment. */
  get queued(): number | undefined {
    return num(this.details.queued);
  }
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
  constructor(message: string, options: FlameErrorOptions & { attempts?: number } = {}) {
    super(message, withFields(options, { attempts: options.attempts }));
  }
  /** How many times the work was tried (more than 1 with `retries`). */
  get attempts(): number {
    return num(this.details.attempts) ?? 1;
  }
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

/** A dependency the library shares with the app comes in two different copies (e.g. two nact versions). */
export class DependencyMismatchError extends FlameError {
  override readonly code = 'FLAME_ERR_DEPENDENCY_MISMATCH';
}

/** What a Kubernetes request was, and what the API server answered. */
export interface KubernetesErrorFields {
  /** The HTTP status; 0 when the API server could not be reached. */
  statusCode: number;
  /** The `reason` of the server's `Status` (`Forbidden`, `NotFound`, `AlreadyExists`...), or `Unreachable`. */
  reason: string;
  /** Why a 403 was refused: `rbac` (a missing grant), `admission` (Pod Security, a webhook), `quota` (ResourceQuota), `limits` (LimitRange). */
  refusal?: 'rbac' | 'admission' | 'quota' | 'limits';
  verb?: string;
  resource?: string;
  namespace?: string;
  name?: string;
}

/**
 * The Kubernetes API server refused a request (status, reason and message from its `Status`).
 * The typed fields live in `details` too, so they survive the wire.
 */
export class KubernetesError extends FlameError {
  override readonly code = 'FLAME_ERR_KUBERNETES';
  constructor(message: string, options: FlameErrorOptions & Partial<KubernetesErrorFields> = {}) {
    const { statusCode, reason, refusal, verb, resource, namespace, name } = options;
    // `status` too: the name `details` had before the typed fields.
    super(message, withFields(options, { statusCode, status: statusCode, reason, refusal, verb, resource, namespace, name }));
  }
  /** The HTTP status; 0 when the API server could not be reached. */
  get statusCode(): number {
    return num(this.details.statusCode) ?? num(this.details.status) ?? 0;
  }
  /** The `reason` of the server's `Status`, or `Unreachable`. */
  get reason(): string {
    return str(this.details.reason) ?? '';
  }
  /** What refused a 403: RBAC, admission (Pod Security, webhooks), a ResourceQuota or a LimitRange. */
  get refusal(): KubernetesErrorFields['refusal'] {
    const value = this.details.refusal;
    return value === 'rbac' || value === 'admission' || value === 'quota' || value === 'limits' ? value : undefined;
  }
  get verb(): string | undefined {
    return str(this.details.verb);
  }
  get resource(): string | undefined {
    return str(this.details.resource);
  }
  get namespace(): string | undefined {
    return str(this.details.namespace);
  }
}

/** An optional peer dependency a feature needs is not installed (e.g. `@opentelemetry/api` for `enableMetrics`). */
export class MissingDependencyError extends FlameError {
  override readonly code = 'FLAME_ERR_MISSING_DEPENDENCY';
}

/**
 * A restartable placed actor (`placeChild` with `restart`) cannot take a message: its queue is
 * full while it moves to another runner (`reason: 'queue full'`), or it gave up after its
 * restart limit (`reason: 'gave up'`).
 */
export class ActorUnavailableError extends FlameError {
  override readonly code = 'FLAME_ERR_ACTOR_UNAVAILABLE';
  constructor(message: string, options: FlameErrorOptions & { actor?: string; reason?: 'queue full' | 'gave up'; restarts?: number } = {}) {
    super(message, withFields(options, { actor: options.actor, reason: options.reason, restarts: options.restarts }));
  }
  /** The restartable actor's name on this node. */
  get actor(): string | undefined {
    return str(this.details.actor);
  }
  get reason(): 'queue full' | 'gave up' | undefined {
    const r = this.details.reason;
    return r === 'queue full' || r === 'gave up' ? r : undefined;
  }
  /** Restarts made so far. */
  get restarts(): number {
    return num(this.details.restarts) ?? 0;
  }
}

/** Every concrete error class with a fixed code. */
const CODED_CLASSES = [
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
  DependencyMismatchError,
  KubernetesError,
  MissingDependencyError,
  ActorUnavailableError,
] as const;

type CodedError = InstanceType<(typeof CODED_CLASSES)[number]>;

/** Every code a {@link FlameError} can carry: `FLAME_ERR_*`. */
export type FlameErrorCode = CodedError['code'] | 'FLAME_ERR_REMOTE';

/** The error class of a code: `FlameErrorOf<'FLAME_ERR_RUNNER_DOWN'>` is {@link RunnerDownError}. */
export type FlameErrorOf<C extends FlameErrorCode> = C extends 'FLAME_ERR_REMOTE' ? RemoteError : Extract<CodedError, { readonly code: C }>;

/** Every concrete error class, by code: used to rebuild errors that crossed the wire. */
export const errorClasses: ReadonlyMap<string, new (message: string, options?: FlameErrorOptions) => FlameError> =
  new Map(CODED_CLASSES.map((Class) => [new Class('').code, Class]));

/**
 * True when `error` is a FlameError, optionally with the given code; with a code it narrows to
 * that code's class (an unknown code does not compile). It matches on `code`, so it also
 * recognises errors rebuilt from the wire or raised by another copy of the library.
 */
export function isFlameError<C extends FlameErrorCode>(error: unknown, code: C): error is FlameErrorOf<C>;
export function isFlameError(error: unknown): error is FlameError;
export function isFlameError(error: unknown, code?: FlameErrorCode): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const c = (error as { code?: unknown }).code;
  if (typeof c !== 'string' || !c.startsWith('FLAME_ERR')) return false;
  return code === undefined || c === code;
}
