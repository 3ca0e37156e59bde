import { expect } from 'chai';
import { dispatch, query, spawn, start, stop, type ActorContext, type Ref, type SupervisionContext } from 'nact';
import { createHook } from 'node:async_hooks';
import { batchedDeliveryEnabled, disableBatchedDelivery, enableBatchedDelivery, leanDeliveryInUse, restoreNactDelivery, useLeanDelivery } from '../../src/cluster/batched-delivery.js';
import { startNode, type ClusterNode } from '../../src/cluster/node.js';
import { InvalidOptionError } from '../../src/errors.js';
import { waitFor } from '../helpers/wait.js';

type System = ReturnType<typeof start>;
let systems = 0;

/** Counts event-loop iterations: one tick per `setImmediate` phase while running. */
function turnCounter(): { readonly turn: number; stop(): void } {
  let turn = 0;
  let running = true;
  const tick = () => {
    turn++;
    if (running && turn < 1_000_000) setImmediate(tick);
  };
  setImmediate(tick);
  return {
    get turn() {
      return turn;
    },
    stop() {
      running = false;
    },
  };
}

/** The undelivered messages nact gives `afterStop` (its typings say messages; it passes `{ message, sender }`). */
function mailboxOf(ctx: unknown): unknown[] {
  return (ctx as { mailbox: Array<{ message: unknown }> }).mailbox.map((m) => m.message);
}

/** Spawns an actor that records each message with the turn it was handled in. */
function recorder(system: System, turns: { turn: number }, opts: Record<string, unknown> = {}) {
  const seen: Array<{ n: number; turn: number }> = [];
  const ref = spawn(system, (state: number, msg: { n: number }) => {
    seen.push({ n: msg.n, turn: turns.turn });
    return state + 1;
  }, 'recorder', { initialState: 0, ...opts });
  return { ref, seen };
}

type TestSystem = { system: System; turns: ReturnType<typeof turnCounter> };

/** A new nact system and turn counter for each test of the calling describe; after it, both stopped and nact's own delivery back. */
function eachTestSystem(prefix: string): TestSystem {
  const t = {} as TestSystem;
  beforeEach(function () {
    t.system = start({ name: `${prefix}-${process.pid}-${++systems}` } as unknown as Parameters<typeof start>[0]);
    t.turns = turnCounter();
  });
  afterEach(function () {
    t.turns.stop();
    stop(t.system);
    restoreNactDelivery();
  });
  return t;
}

/** Sends `count` messages to a new recorder; expects them handled in order, each in a turn of its own. */
async function expectOneMessagePerTurn(t: TestSystem, count: number): Promise<void> {
  const { ref, seen } = recorder(t.system, t.turns);
  for (let n = 0; n < count; n++) dispatch(ref, { n });
  await waitFor(() => seen.length === count, `${count} messages`);
  expect(seen.map((s) => s.n)).to.deep.equal(Array.from({ length: count }, (_, n) => n));
  expect(new Set(seen.map((s) => s.turn)).size).to.equal(count);
}

/** nact's semantics, which lean and batched delivery both keep: run once for each. */
function keepsNactSemantics(install: () => void, t: TestSystem) {
  it('awaits an async handler before giving the actor its next message', async function () {
    install();
    const log: string[] = [];
    const ref = spawn(t.system, async (state: number, msg: { n: number }) => {
      log.push(`start ${msg.n}`);
      await Promise.resolve();
      await new Promise((r) => setImmediate(r));
      log.push(`end ${msg.n}`);
      return state + 1;
    }, 'async', { initialState: 0 });
    for (let n = 0; n < 5; n++) dispatch(ref, { n });
    await waitFor(() => log.length === 10, '5 async messages');
    expect(log).to.deep.equal([0, 1, 2, 3, 4].flatMap((n) => [`start ${n}`, `end ${n}`]));
  });

  it('keeps per-message state threading and a context per message (sender, self)', async function () {
    install();
    const senders: unknown[] = [];
    const ref = spawn(t.system, (state: number[], msg: { n: number; replyTo?: Ref<number[]> }, ctx: ActorContext<unknown, Ref<unknown>>) => {
      senders.push((ctx as unknown as { sender: { type: string } }).sender.type);
      expect(ctx.self).to.deep.include({ name: 'stateful' });
      const next = [...state, msg.n];
      if (msg.replyTo) dispatch(msg.replyTo, next);
      return next;
    }, 'stateful', { initialState: [] as number[] });
    for (let n = 0; n < 9; n++) dispatch(ref, { n });
    const final = await query(ref, (replyTo: Ref<number[]>) => ({ n: 9, replyTo }), 5000);
    expect(final).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(senders.slice(0, 9).every((t) => t === 'nobody')).to.equal(true);
    expect(senders[9]).to.equal('temp');
  });

  it('gives each message a context of its own: children a copy, taken when the message is handled', async function () {
    install();
    const seen: Array<{ children: string[]; ctx: unknown }> = [];
    const ref = spawn(t.system, (_s: undefined, msg: { n: number }, ctx: ActorContext<unknown, Ref<unknown>>) => {
      seen.push({ children: [...ctx.children.keys()], ctx });
      if (msg.n === 1) spawn(ctx.self, (s: undefined) => s, 'kid');
      // A handler that changes its copy changes nothing for the next message.
      (ctx.children as Map<string, unknown>).set(`scribble-${msg.n}`, null);
      return undefined;
    }, 'parent-of-one');
    for (let n = 0; n < 4; n++) dispatch(ref, { n });
    await waitFor(() => seen.length === 4, 'four messages');
    expect(seen.map((s) => s.children)).to.deep.equal([[], [], ['kid'], ['kid']]);
    expect(new Set(seen.map((s) => s.ctx)).size).to.equal(4);
  });

  it('answers every query with its own reply', async function () {
    install();
    const ref = spawn(t.system, (_s: undefined, msg: { v: number; replyTo: Ref<number> }) => {
      dispatch(msg.replyTo, msg.v * 2);
      return undefined;
    }, 'doubler');
    const answers = await Promise.all(Array.from({ length: 300 }, (_, v) => query(ref, (replyTo: Ref<number>) => ({ v, replyTo }), 5000)));
    expect(answers).to.deep.equal(Array.from({ length: 300 }, (_, v) => v * 2));
  });

  it('sends a crashing message through onCrash, then resumes with the next ones in order', async function () {
    install();
    const crashes: Array<{ msg: unknown; error: string | undefined }> = [];
    const { ref, seen } = recorder(t.system, t.turns, {
      onCrash: (msg: unknown, error: Error | undefined, ctx: SupervisionContext<unknown, Ref<unknown>>) => {
        crashes.push({ msg, error: error?.message });
        return ctx.resume;
      },
    });
    const crashing = spawn(t.system, (state: number, msg: { n: number }) => {
      if (msg.n === 5) throw new Error('five');
      dispatch(ref, msg);
      return state + 1;
    }, 'crashing', {
      initialState: 0,
      onCrash: (msg: unknown, error: Error | undefined, ctx: SupervisionContext<unknown, Ref<unknown>>) => {
        crashes.push({ msg, error: error?.message });
        return ctx.resume;
      },
    });
    for (let n = 0; n < 10; n++) dispatch(crashing, { n });
    await waitFor(() => seen.length === 9, '9 forwarded messages');
    expect(seen.map((s) => s.n)).to.deep.equal([0, 1, 2, 3, 4, 6, 7, 8, 9]);
    expect(crashes).to.deep.equal([{ msg: { n: 5 }, error: 'five' }]);
  });

  it('routes a rejected async handler through onCrash too', async function () {
    install();
    const crashes: unknown[] = [];
    const ref = spawn(t.system, async (state: number, msg: { n: number; replyTo?: Ref<number> }) => {
      await Promise.resolve();
      if (msg.n === 1) throw new Error('async one');
      if (msg.replyTo) dispatch(msg.replyTo, state);
      return state + 1;
    }, 'async-crash', {
      initialState: 0,
      onCrash: (msg: unknown, _e: Error | undefined, ctx: SupervisionContext<unknown, Ref<unknown>>) => {
        crashes.push(msg);
        return ctx.resume;
      },
    });
    for (let n = 0; n < 3; n++) dispatch(ref, { n });
    const count = await query(ref, (replyTo: Ref<number>) => ({ n: 3, replyTo }), 5000);
    expect(count).to.equal(2); // 0 and 2 counted; 1 crashed and was resumed past
    expect(crashes).to.deep.equal([{ n: 1 }]);
  });

  it('stops on a crash under the stop policy; afterStop sees the undelivered messages', async function () {
    install();
    let after: { state: unknown; mailbox: unknown[] } | undefined;
    const { ref, seen } = recorder(t.system, t.turns, {
      onCrash: (_m: unknown, _e: Error | undefined, ctx: SupervisionContext<unknown, Ref<unknown>>) => ctx.stop,
    });
    const crasher = spawn(t.system, (_s: undefined, msg: { n: number }) => {
      if (msg.n === 3) throw new Error('three');
      dispatch(ref, msg);
      return undefined;
    }, 'crasher', {
      onCrash: (_m: unknown, _e: Error | undefined, ctx: SupervisionContext<unknown, Ref<unknown>>) => ctx.stop,
      afterStop: (_state: unknown, ctx: unknown) => {
        after = { state: 'crasher', mailbox: mailboxOf(ctx) };
      },
    });
    for (let n = 0; n < 8; n++) dispatch(crasher, { n });
    await waitFor(() => after !== undefined, 'the crasher to stop');
    expect(after).to.deep.equal({ state: 'crasher', mailbox: [{ n: 4 }, { n: 5 }, { n: 6 }, { n: 7 }] });
    await waitFor(() => seen.length === 3, 'three forwarded');
    expect(seen.map((s) => s.n)).to.deep.equal([0, 1, 2]);
  });

  it('resets the state on a crash under the reset policy and goes on with the mailbox', async function () {
    install();
    const states: number[] = [];
    const ref = spawn(t.system, (state: number, msg: { n: number }) => {
      if (msg.n === 3) throw new Error('reset me');
      states.push(state);
      return state + 1;
    }, 'resetting', {
      initialState: 100,
      onCrash: (_m: unknown, _e: Error | undefined, ctx: SupervisionContext<unknown, Ref<unknown>>) => ctx.reset,
    });
    for (let n = 0; n < 6; n++) dispatch(ref, { n });
    await waitFor(() => states.length === 5, '5 handled messages');
    expect(states).to.deep.equal([100, 101, 102, 100, 101]);
  });

  it('escalates a crash to the parent actor as nact does', async function () {
    install();
    const escalated: unknown[] = [];
    const parent = spawn(t.system, (_s: undefined, _m: unknown) => undefined, 'parent', {
      onCrash: (msg: unknown, _e: Error | undefined, ctx: SupervisionContext<unknown, Ref<unknown>>) => {
        escalated.push(msg);
        return ctx.resume;
      },
    });
    const child = spawn(parent, (_s: undefined, msg: { n: number }) => {
      if (msg.n === 2) throw new Error('up');
      return undefined;
    }, 'child', { onCrash: (_m: unknown, _e: Error | undefined, ctx: SupervisionContext<unknown, Ref<unknown>>) => ctx.escalate });
    for (let n = 0; n < 4; n++) dispatch(child, { n });
    await waitFor(() => escalated.length === 1, 'the escalation');
    expect(escalated).to.deep.equal([{ n: 2 }]);
  });

  it('takes no further message once a handler stops its own actor', async function () {
    install();
    const handled: number[] = [];
    let undelivered: unknown[] | undefined;
    const ref = spawn(t.system, (_s: undefined, msg: { n: number }, ctx: ActorContext<unknown, Ref<unknown>>) => {
      handled.push(msg.n);
      if (msg.n === 2) stop(ctx.self);
      return undefined;
    }, 'self-stopping', {
      afterStop: (_state: unknown, ctx: unknown) => {
        undelivered = mailboxOf(ctx).map((m) => (m as { n: number }).n);
      },
    });
    for (let n = 0; n < 6; n++) dispatch(ref, { n });
    await waitFor(() => undelivered !== undefined, 'afterStop');
    expect(handled).to.deep.equal([0, 1, 2]);
    expect(undelivered).to.deep.equal([3, 4, 5]);
  });

}

describe('Batched delivery (opt-in nact patch)', function () {
  const t = eachTestSystem('batched');
  keepsNactSemantics(() => enableBatchedDelivery(), t);

  it('without it, nact hands an actor one message per event-loop turn', async function () {
    await expectOneMessagePerTurn(t, 200);
  });

  it('takes several queued messages per turn, in the order they were sent', async function () {
    enableBatchedDelivery();
    expect(batchedDeliveryEnabled()).to.equal(true);
    const { ref, seen } = recorder(t.system, t.turns);
    for (let n = 0; n < 1000; n++) dispatch(ref, { n });
    await waitFor(() => seen.length === 1000, '1000 messages');
    expect(seen.map((s) => s.n)).to.deep.equal(Array.from({ length: 1000 }, (_, n) => n));
    expect(new Set(seen.map((s) => s.turn)).size).to.be.at.most(Math.ceil(1000 / 64) + 2);
  });

  it('yields to the event loop after maxPerTurn messages', async function () {
    enableBatchedDelivery({ maxPerTurn: 4 });
    const { ref, seen } = recorder(t.system, t.turns);
    for (let n = 0; n < 40; n++) dispatch(ref, { n });
    await waitFor(() => seen.length === 40, '40 messages');
    const perTurn = new Map<number, number>();
    for (const s of seen) perTurn.set(s.turn, (perTurn.get(s.turn) ?? 0) + 1);
    expect(Math.max(...perTurn.values())).to.equal(4);
    expect(perTurn.size).to.be.at.least(10);
  });

  it('restores nact delivery when disabled', async function () {
    enableBatchedDelivery();
    disableBatchedDelivery();
    expect(batchedDeliveryEnabled()).to.equal(false);
    await expectOneMessagePerTurn(t, 50);
  });

  it('refuses a bad maxPerTurn with InvalidOptionError', function () {
    expect(() => enableBatchedDelivery({ maxPerTurn: 0 })).to.throw(InvalidOptionError, /maxPerTurn/);
    expect(() => enableBatchedDelivery({ maxPerTurn: 'many' as unknown as number })).to.throw(InvalidOptionError, /maxPerTurn/);
    expect(() => enableBatchedDelivery({ perTurn: 3 } as unknown as { maxPerTurn: number })).to.throw(InvalidOptionError, /perTurn/);
    expect(batchedDeliveryEnabled()).to.equal(false);
  });
});

/** Promises created while `messages` messages are dispatched to a fresh counting actor and handled. */
async function promisesFor(system: System, name: string, messages: number): Promise<number> {
  let created = 0;
  let done!: () => void;
  const handled = new Promise<void>((resolve) => (done = resolve));
  const ref = spawn(system, (count: number) => {
    if (count + 1 === messages) done();
    return count + 1;
  }, name, { initialState: 0 });
  const hook = createHook({
    init(_id, type) {
      if (type === 'PROMISE') created++;
    },
  }).enable();
  try {
    for (let n = 0; n < messages; n++) dispatch(ref, { n });
    await handled;
  } finally {
    hook.disable();
  }
  return created;
}

describe('Lean delivery (nact delivery without its per-message closure and promises)', function () {
  const t = eachTestSystem('lean');
  keepsNactSemantics(() => useLeanDelivery(), t);

  it('is installed by every cluster node that starts', async function () {
    restoreNactDelivery();
    expect(leanDeliveryInUse()).to.equal(false);
    const node = await startNode({ name: 'lean-a@127.0.0.2', port: 0, cookie: 'lean-cookie', log: false });
    try {
      expect(leanDeliveryInUse()).to.equal(true);
    } finally {
      await node.stop();
    }
  });

  it('still hands an actor one message per event-loop turn, in order', async function () {
    useLeanDelivery();
    await expectOneMessagePerTurn(t, 300);
  });

  it('creates no promise for a message whose handler returns synchronously (nact creates several)', async function () {
    const nact = await promisesFor(t.system, 'nact-own', 500);
    useLeanDelivery();
    const lean = await promisesFor(t.system, 'lean', 500);
    expect(nact).to.be.at.least(1000);
    expect(lean).to.be.below(50);
  });

  it('leaves batched delivery in force, and is what disabling batched delivery comes back to', async function () {
    enableBatchedDelivery();
    useLeanDelivery();
    expect(batchedDeliveryEnabled()).to.equal(true);
    disableBatchedDelivery();
    expect(leanDeliveryInUse()).to.equal(true);
    await expectOneMessagePerTurn(t, 50);
  });
});

describe('Batched delivery behind a cluster link', function () {
  let a: ClusterNode;
  let b: ClusterNode;

  beforeEach(async function () {
    enableBatchedDelivery();
    a = await startNode({ name: 'batch-a@127.0.0.2', port: 0, cookie: 'batch-cookie', log: false });
    b = await startNode({ name: 'batch-b@127.0.0.3', port: 0, cookie: 'batch-cookie', log: false });
  });

  afterEach(async function () {
    restoreNactDelivery();
    await a?.stop();
    await b?.stop();
  });

  it('delivers remote messages in order and answers remote queries', async function () {
    const seen: number[] = [];
    spawn(b.system, (state: number, msg: { n: number; replyTo?: Ref<number> }) => {
      if (msg.replyTo) dispatch(msg.replyTo, state);
      else seen.push(msg.n);
      return msg.replyTo ? state : state + 1;
    }, 'sink', { initialState: 0 });
    const remote = a.remoteRef<{ n: number; replyTo?: Ref<number> }>(b.name, 'sink');
    for (let n = 0; n < 5000; n++) dispatch(remote, { n });
    const count = await query(remote, (replyTo: Ref<number>) => ({ n: -1, replyTo }), 10_000);
    expect(count).to.equal(5000);
    expect(seen).to.deep.equal(Array.from({ length: 5000 }, (_, n) => n));
  });
});
