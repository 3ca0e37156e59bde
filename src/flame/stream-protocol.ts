/**
 * What parent and runner say to each other about streams (`pool.stream`) and tracked resources,
 * on top of the cluster layer's requests. A stream is pulled: each `pull` asks for at most `max`
 * items and is answered with a batch at once when it has `max` items (or the end), else one turn
 * after its first item. Several pulls may be in flight, answered in the order they came, as long
 * as what they ask for in all stays within the stream's `window` (the caller's highWaterMark);
 * the runner refuses a pull beyond it. Requests already settle exactly once,
 * reject with NodeDownError when the link dies and carry the caller's cancellation to the
 * runner; the stream protocol adds nothing to that.
 */
import type { ShippedFunction } from './fn-ref.js';

export const STREAM_SERVICE = {
  /** parent -> runner: start a stream, answer its first batch. */
  open: 'flame.stream.open',
  /** parent -> runner: the next batch of a stream. */
  pull: 'flame.stream.pull',
  /** parent -> runner: stop a stream (or release a tracked resource); answered once its `finally` ran. */
  cancel: 'flame.stream.cancel',
  /** parent -> runner: run a function whose result is tracked (kept on the runner until released). */
  track: 'flame.track',
} as const;

export interface StreamOpenRequest {
  /** Chosen by the parent, unique per parent node, so a cancel can name the stream before it is open. */
  id: number;
  fn: ShippedFunction;
  args: unknown[];
  /** Items the runner may produce ahead of the caller (its prefetch) and the most one batch carries. */
  window: number;
  /** Milliseconds the runner allows the stream (the rest of the caller's deadline); -1 for none. */
  timeout: number;
}

export interface StreamPullRequest {
  id: number;
  /** Most items the caller has room for (beside what its other pulls in flight ask for). */
  max: number;
}

export interface StreamCancelRequest {
  id: number;
}

/** One batch: items in order; `done` once the stream has ended after them. */
export interface StreamBatch {
  items: unknown[];
  done: boolean;
}

export interface TrackRequest {
  id: number;
  fn: ShippedFunction;
  args: unknown[];
  /** Milliseconds the runner allows the function to return its resource; -1 for none. */
  timeout: number;
}

/** What a tracked call answers: the resource's value, as the caller sees it. */
export interface TrackReply {
  value: unknown;
}
