/**
 * How nact actors take their messages in a process that runs a flame node.
 *
 * nact 7.6.2 (`Actor#handleMessage`) schedules every message in its own `setImmediate` and an
 * async closure that awaits `Promise.resolve(result)`, so one actor handles at most one message
 * per loop iteration and each message costs a closure, two promises and a microtask besides.
 *
 * Lean delivery (installed by every cluster node, see `useLeanDelivery`): nact's own delivery,
 * one message per `setImmediate`, without the per-message closure and promises: a handler that
 * returns synchronously has its state stored and the next message scheduled at once; one that
 * returns a promise is awaited as nact does. Same order, same turns, same context per message,
 * same supervision (a throw or rejection goes to `handleFault` with the message and sender). Only
 * a microtask's view of when `state` is stored changes, which no handler can see.
 *
 * Batched delivery (opt-in, `enableBatchedDelivery()`): an actor takes up to `maxPerTurn`
 * queued messages in one event-loop turn. A remote link delivers hundreds of messages per
 * frame, and one message per turn makes the actor, not the wire, the ceiling. It replaces
 * `handleMessage` on nact's `Actor` prototype (every actor of every system in this process,
 * persistent actors included) with a loop that keeps nact's semantics:
 * - order: messages are taken from the same mailbox in the same order, one at a time; an async
 *   handler (one returning a promise) is awaited before the next message, as nact does;
 * - supervision: a handler that throws (or rejects) goes to the actor's `onCrash` policy exactly
 *   as before, with the message and sender, and the loop ends there: what happens next
 *   (resume, reset, stop, escalate) is nact's own code;
 * - `query`: a reply to a temporary ref resolves the query as before;
 * - stop: an actor stopped by its own handler (or by anything the handler calls) takes no
 *   further message; `afterStop` sees the undelivered mailbox;
 * - each message gets its own context (`ctx.sender` is that message's sender, `ctx.children`
 *   a snapshot), built by the actor's own `createContext`.
 * What changes: within a batch, a handler that returns synchronously is followed directly by
 * the next message, so microtasks it queued (promise callbacks) run after the batch rather than
 * between two messages, and other actors and I/O wait at most one batch.
 */
import { createRequire } from 'node:module';
import { OptionReader } from '../validate.js';

const require = createRequire(import.meta.url);

/** The parts of nact's `Actor` (lib/actor.js) this module reads and drives. */
interface NactActor {
  f: (this: unknown, state: unknown, message: unknown, ctx: unknown) => unknown;
  state: unknown;
  stopped: boolean;
  busy: boolean;
  immediate: NodeJS.Immediate | undefined;
  mailbox: { shift(): { message: unknown; sender: unknown } | undefined };
  createContext(sender: unknown): unknown;
  parent: { reference: unknown } | undefined;
  path: unknown;
  reference: unknown;
  name: string;
  childReferences: Map<string, unknown>;
  log: unknown;
  afterMessage(): void;
  processNext(): void;
  setTimeout(): void;
  handleFault(message: unknown, sender: unknown, error: unknown): Promise<void>;
  handleMessage(message: unknown, sender: unknown): void;
}

const { Actor } = require('nact/lib/actor.js') as { Actor: { prototype: NactActor } };

export interface BatchedDeliveryOptions {
  /** Most messages one actor handles in one event-loop turn before yielding (default 64). */
  maxPerTurn?: number;
}

export const BATCHED_DELIVERY_DEFAULTS = { maxPerTurn: 64 } as const;

/** nact's own `handleMessage`. */
const original = Actor.prototype.handleMessage;
/** What `disableBatchedDelivery()` goes back to: nact's own, or lean delivery once a node installed it. */
let unbatched = original;
let maxPerTurn: number = BATCHED_DELIVERY_DEFAULTS.maxPerTurn;

/** nact's own `createContext` (persistent actors override it, and keep theirs). */
const nactCreateContext = Actor.prototype.createContext;
const CONTEXT_KEYS = 'parent,path,self,name,children,sender,log';
/** Whether nact's context is still the one {@link contextOf} builds (checked once, on the installed nact). */
const sameContext = (() => {
  try {
    const probe = { parent: undefined, path: 'p', reference: 'r', name: 'n', childReferences: new Map(), log: 'l' };
    return Object.keys(nactCreateContext.call(probe as unknown as NactActor, 's') as object).join(',') === CONTEXT_KEYS;
  } catch {
    return false;
  }
})();

/**
 * The context of one message, as nact's `createContext` builds it (same fields, same order), but
 * an actor without children gets an empty Map rather than a copy of its empty map (a copy goes
 * through Map's iterable constructor, several times dearer, for every message).
 */
function contextOf(actor: NactActor, sender: unknown): unknown {
  if (!sameContext || actor.createContext !== nactCreateContext) return actor.createContext(sender);
  return {
    parent: actor.parent ? actor.parent.reference : undefined,
    path: actor.path,
    self: actor.reference,
    name: actor.name,
    children: actor.childReferences.size === 0 ? new Map() : new Map(actor.childReferences),
    sender,
    log: actor.log,
  };
}

function isThenable(x: unknown): x is PromiseLike<unknown> {
  return (typeof x === 'object' || typeof x === 'function') && x !== null && typeof (x as { then?: unknown }).then === 'function';
}

/**
 * One batch: the message nact handed over, then what the mailbox holds, while the budget lasts.
 * Mirrors nact's `handleMessage` + `processNext` for each message.
 */
async function drain(actor: NactActor, message: unknown, sender: unknown): Promise<void> {
  for (let budget = maxPerTurn; ; budget--) {
    try {
      const ctx = contextOf(actor, sender);
      let next = actor.f.call(ctx, actor.state, message, ctx);
      if (isThenable(next)) next = await next;
      actor.state = next;
      actor.afterMessage();
    } catch (e) {
      void actor.handleFault(message, sender, e);
      return;
    }
    if (actor.stopped) return;
    const queued = actor.mailbox.shift();
    if (!queued) {
      actor.busy = false;
      actor.setTimeout(); // nact's shutdownAfter timer ticks while the mailbox is empty
      return;
    }
    if (budget <= 1) {
      // Budget spent: the rest waits for the next turn, so other actors and I/O get theirs.
      actor.handleMessage(queued.message, queued.sender);
      return;
    }
    message = queued.message;
    sender = queued.sender;
  }
}

/** Lean delivery of one message (see the module comment): the body of nact's per-message closure. */
function deliverOne(actor: NactActor, message: unknown, sender: unknown): void {
  let next: unknown;
  try {
    const ctx = contextOf(actor, sender);
    next = actor.f.call(ctx, actor.state, message, ctx);
    if (isThenable(next)) {
      void deliverAsync(actor, next, message, sender);
      return;
    }
    actor.state = next;
    actor.afterMessage();
    actor.processNext();
  } catch (e) {
    void actor.handleFault(message, sender, e);
  }
}

async function deliverAsync(actor: NactActor, pending: PromiseLike<unknown>, message: unknown, sender: unknown): Promise<void> {
  try {
    actor.state = await pending;
    actor.afterMessage();
    actor.processNext();
  } catch (e) {
    void actor.handleFault(message, sender, e);
  }
}

function leanHandleMessage(this: NactActor, message: unknown, sender: unknown): void {
  this.busy = true;
  // The arguments ride on the Immediate: no closure per message.
  this.immediate = setImmediate(deliverOne, this, message, sender);
}

/**
 * Installs lean delivery for every nact actor of this process (every cluster node calls it when
 * it starts; idempotent). Batched delivery, when enabled, stays in force; disabling it comes back
 * to lean delivery.
 */
export function useLeanDelivery(): void {
  if (Actor.prototype.handleMessage === original) Actor.prototype.handleMessage = leanHandleMessage;
  unbatched = leanHandleMessage;
}

/** Goes back to nact's own delivery (lean and batched both off): for tests that compare them. */
export function restoreNactDelivery(): void {
  Actor.prototype.handleMessage = original;
  unbatched = original;
  maxPerTurn = BATCHED_DELIVERY_DEFAULTS.maxPerTurn;
}

/** Whether lean delivery is what nact actors of this process use now. */
export function leanDeliveryInUse(): boolean {
  return Actor.prototype.handleMessage === leanHandleMessage;
}

function batchedHandleMessage(this: NactActor, message: unknown, sender: unknown): void {
  this.busy = true;
  this.immediate = setImmediate(() => void drain(this, message, sender));
}

/**
 * Lets every nact actor in this process take up to `maxPerTurn` queued messages per event-loop
 * turn (see the module comment for what is kept and what changes). Call it once at start-up, in
 * the parent and (for placed actors) in the runner's entry point before `startRunner()`; calling
 * it again changes `maxPerTurn`. Returns a function that restores nact's own delivery.
 *
 * ```ts
 * import { enableBatchedDelivery, isRunner, startRunner } from 'flame-actors';
 * enableBatchedDelivery({ maxPerTurn: 64 });
 * if (isRunner()) await startRunner();
 * ```
 */
export function enableBatchedDelivery(options?: BatchedDeliveryOptions): () => void {
  const r = new OptionReader('enableBatchedDelivery', options, ['maxPerTurn']);
  maxPerTurn = r.int('maxPerTurn', BATCHED_DELIVERY_DEFAULTS.maxPerTurn, 1, 1_000_000);
  Actor.prototype.handleMessage = batchedHandleMessage;
  return disableBatchedDelivery;
}

/**
 * Back to one message per `setImmediate` (for messages scheduled from now on): nact's own
 * delivery, or lean delivery once a cluster node of this process installed it.
 */
export function disableBatchedDelivery(): void {
  Actor.prototype.handleMessage = unbatched;
  maxPerTurn = BATCHED_DELIVERY_DEFAULTS.maxPerTurn;
}

/** Whether `enableBatchedDelivery()` is in force. */
export function batchedDeliveryEnabled(): boolean {
  return Actor.prototype.handleMessage === batchedHandleMessage;
}
