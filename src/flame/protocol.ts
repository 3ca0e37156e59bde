/**
 * What parent and runner say to each other, on top of the cluster layer's requests.
 * Both sides import these names and shapes; nothing else is shared between them.
 */
import type { ShippedFunction } from './fn-ref.js';

export const SERVICE = {
  /** parent -> runner: run a function, answer its result. */
  call: 'flame.call',
  /** parent -> runner: spawn an actor from a factory, answer its ref. */
  place: 'flame.place',
  /** parent -> runner: drain and exit. */
  shutdown: 'flame.shutdown',
  /** runner -> parent: booted and connected; ready for work. */
  ready: 'flame.ready',
  /** runner -> parent: idle; may I stop? */
  idle: 'flame.idle',
  /** runner -> parent: a placed actor stopped (its slot is free). */
  childExit: 'flame.childExit',
  /** runner -> parent: shipped work left an error unhandled (the runner lives on). */
  fault: 'flame.fault',
} as const;

export interface CallRequest {
  /**
   * The function, or the `id` of a closure this runner was sent in full before (its source is
   * not sent again). A runner that no longer has it answers {@link UNKNOWN_FUNCTION}.
   */
  fn: ShippedFunction | number;
  args: unknown[];
  /** Milliseconds the runner allows the call (the rest of the caller's deadline); -1 for none. */
  timeout: number;
}

/** `details.reason` of the ProtocolError a runner answers for a closure id it does not have. */
export const UNKNOWN_FUNCTION = 'unknown-function';

export interface PlaceRequest {
  fn: ShippedFunction;
  args: unknown[];
  /** Always -1: a placement is bounded by the caller's request timeout. */
  timeout: number;
  /** Stop the actor when the caller's node goes down. */
  link: boolean;
  /** Node of the caller. */
  caller: string;
}

export interface PlaceReply {
  ref: unknown;
  /** Id the runner reports in `childExit`. */
  child: number;
}

export interface ReadyRequest {
  runner: string;
  pool: string;
}

export interface IdleRequest {
  runner: string;
}

export interface IdleReply {
  stop: boolean;
}

export interface ChildExitRequest {
  runner: string;
  child: number;
}

export interface ShutdownRequest {
  reason: string;
}

/** An error that shipped work left unhandled on a runner (it did not end the runner). */
export interface RunnerFault {
  kind: 'uncaughtException' | 'unhandledRejection';
  /** The error's class name (`typeof` the value for a non-Error). */
  name: string;
  message: string;
  /** Its stack on the runner, when it was an Error. */
  stack: string | undefined;
  /** Where its code lives: `flame://fn/<hash>.js` for a closure, the module URL for a moduleRef. */
  origin: string | undefined;
  /** It was traced to exactly one running call, which failed with it. */
  failedCall: boolean;
}

export interface FaultRequest extends RunnerFault {
  runner: string;
}
