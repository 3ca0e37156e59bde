/**
 * The backend's supervisor: one nact actor per pool that takes, in order, the boots waiting for
 * their pod and every pod observation (watch events, and direct reads when the watch is quiet).
 * It is the one owner of every runner pod's lifecycle, a transition table:
 *
 *   booting --started--> up          (Running with an IP: the boot resolves)
 *   booting --cannotStart--> ended   (a state that cannot heal, or a deleted pod: the boot fails)
 *   up --gone--> ended               (failed, exited, deleted, evicted: the pool is told why)
 *   booting | up --released--> ended (the pool is done with it: nothing more is reported)
 *
 * Events may arrive before the create call returns the pod's name, so the last state of every
 * pod seen is kept until the pod is deleted (and briefly after, as a tombstone).
 */
import { dispatch, spawn, stop as stopActor, type Ref } from 'nact';
import type { V1Pod } from '@kubernetes/client-node';
import type { Logger } from '../../log.js';
import type { PodEventType } from './pod-watcher.js';
import { runnerPodState } from './pod-state.js';

/** What a boot learns: the pod IP, or why the pod cannot run. */
export type BootOutcome = { ok: true; ip: string } | { ok: false; reason: string };

export type RunnerPodPhase = 'booting' | 'up' | 'ended';
export type RunnerPodEvent = 'started' | 'cannotStart' | 'gone' | 'released';

/** Every allowed transition; anything else is ignored (and logged at debug). */
export const TRANSITIONS: Readonly<Record<RunnerPodPhase, Partial<Record<RunnerPodEvent, RunnerPodPhase>>>> = {
  booting: { started: 'up', cannotStart: 'ended', released: 'ended' },
  up: { gone: 'ended', released: 'ended' },
  ended: {},
};

type Message =
  | { type: 'expect'; runnerId: string; pod: string; settle: (outcome: BootOutcome) => void }
  | { type: 'event'; event: PodEventType; pod: V1Pod }
  | { type: 'release'; pod: string };

interface TrackedPod {
  readonly runnerId: string;
  readonly pod: string;
  phase: RunnerPodPhase;
  settle?: (outcome: BootOutcome) => void;
  /** What the pod waits for, as last seen (for a boot that times out). */
  waitingFor?: string;
  /** Image pull attempts seen failing (ErrImagePull), to fail only after the kubelet's back-offs. */
  pullFailures: number;
  /** When the current run of pull failures began. */
  pullFailingSince?: number;
  lastReason?: string;
}

interface LastSeen {
  pod: V1Pod;
  deleted: boolean;
  at: number;
}

export interface RunnerPodSupervisorOptions {
  /** The actor system to live in (the parent node's). */
  system: Parameters<typeof spawn>[0];
  name: string;
  logger: Logger;
  waitWhenUnschedulable: boolean;
  /** How long a pod may keep failing to pull its image before its boot fails. */
  imagePullTimeout: number;
  runnerExited: (runnerId: string, reason: string) => void;
}

/** Deleted pods remembered for a boot that learns its pod's name late. */
const TOMBSTONES = 256;
/** Failed pull attempts before a boot gives up on the image (the first try and two back-offs: about 30 s on a kubelet). */
const PULL_ATTEMPTS = 3;

export class RunnerPodSupervisor {
  readonly #o: RunnerPodSupervisorOptions;
  readonly #actor: Ref<Message>;
  readonly #tracked = new Map<string, TrackedPod>();
  readonly #seen = new Map<string, LastSeen>();
  readonly #tombstones: string[] = [];

  constructor(options: RunnerPodSupervisorOptions) {
    this.#o = options;
    this.#actor = spawn(
      options.system,
      (state: undefined, message: Message) => {
        this.#handle(message);
        return state;
      },
      options.name,
      {
        onCrash: (_message, error, ctx) => {
          options.logger.error(`runner pod supervisor error (resumed): ${(error as Error)?.message}`);
          return ctx.resume;
        },
      },
    ) as Ref<Message>;
  }

  /** Resolves once the pod runs with an IP, or with why it cannot. */
  expect(runnerId: string, pod: string): Promise<BootOutcome> {
    return new Promise((settle) => dispatch(this.#actor, { type: 'expect', runnerId, pod, settle }));
  }

  /** A pod observation: a watch event, or a direct read (MODIFIED, or DELETED for a 404). */
  observe(event: PodEventType, pod: V1Pod): void {
    dispatch(this.#actor, { type: 'event', event, pod });
  }

  /** The pool is done with this pod (shut down, or its boot was abandoned): report nothing more. */
  release(pod: string): void {
    dispatch(this.#actor, { type: 'release', pod });
  }

  /** What a booting pod waits for, as last seen (the scheduler's or the kubelet's message). */
  waitingFor(pod: string): string | undefined {
    return this.#tracked.get(pod)?.waitingFor;
  }

  /** Milliseconds since the last observation of `pod` (Infinity when never seen). */
  quietFor(pod: string): number {
    const last = this.#seen.get(pod);
    return last ? performance.now() - last.at : Infinity;
  }

  stop(): void {
    try {
      stopActor(this.#actor);
    } catch {
      // already stopped
    }
  }

  #handle(message: Message): void {
    switch (message.type) {
      case 'expect': {
        const tracked: TrackedPod = { runnerId: message.runnerId, pod: message.pod, phase: 'booting', settle: message.settle, pullFailures: 0 };
        this.#tracked.set(message.pod, tracked);
        const last = this.#seen.get(message.pod);
        if (last) this.#evaluate(tracked, last);
        return;
      }
      case 'event': {
        const name = message.pod.metadata?.name;
        if (!name) return;
        const last: LastSeen = { pod: message.pod, deleted: message.event === 'DELETED', at: performance.now() };
        this.#seen.set(name, last);
        const tracked = this.#tracked.get(name);
        if (tracked) this.#evaluate(tracked, last);
        if (last.deleted) this.#forget(name);
        return;
      }
      case 'release': {
        const tracked = this.#tracked.get(message.pod);
        if (tracked) {
          this.#transition(tracked, 'released', 'released by the pool');
          this.#tracked.delete(message.pod);
        }
        return;
      }
    }
  }

  /** Moves a pod along the table; false (and nothing done) when the event does not apply in its phase. */
  #transition(tracked: TrackedPod, event: RunnerPodEvent, why: string, ip = ''): boolean {
    const next = TRANSITIONS[tracked.phase][event];
    if (next === undefined) return false;
    this.#o.logger.debug(`runner ${tracked.runnerId}: pod ${tracked.pod} ${tracked.phase} -> ${next} (${event}: ${why})`);
    tracked.phase = next;
    const settle = tracked.settle;
    tracked.settle = undefined;
    if (event === 'started') settle?.({ ok: true, ip });
    else if (event === 'cannotStart') settle?.({ ok: false, reason: why });
    else if (event === 'gone') this.#o.runnerExited(tracked.runnerId, why);
    return true;
  }

  #evaluate(tracked: TrackedPod, last: LastSeen): void {
    const state = runnerPodState(last.pod, { deleted: last.deleted, waitWhenUnschedulable: this.#o.waitWhenUnschedulable });
    switch (state.kind) {
      case 'pending': {
        tracked.waitingFor = state.waitingFor;
        const reason = last.pod.status?.containerStatuses?.[0]?.state?.waiting?.reason;
        if (reason === 'ErrImagePull' && tracked.lastReason !== 'ErrImagePull') tracked.pullFailures++;
        tracked.lastReason = reason;
        if (!state.pullFailure) {
          tracked.pullFailingSince = undefined;
          return;
        }
        const now = performance.now();
        tracked.pullFailingSince ??= now;
        const failingFor = now - tracked.pullFailingSince;
        if (tracked.pullFailures >= PULL_ATTEMPTS || failingFor >= this.#o.imagePullTimeout) {
          this.#transition(
            tracked,
            'cannotStart',
            `pod ${tracked.pod} cannot start: its image could not be pulled (${tracked.pullFailures} attempt(s) over ${Math.round(failingFor / 1000)} s): ${state.waitingFor}`,
          );
        }
        return;
      }
      case 'running':
        this.#transition(tracked, 'started', `running on ${state.ip}`, state.ip);
        return;
      case 'failed':
      case 'ended':
        // While booting the pod cannot start; once up, its runner is gone (or going: the
        // runner drains in its grace period, but the pool must stop sending it work now).
        if (!this.#transition(tracked, 'cannotStart', state.reason)) this.#transition(tracked, 'gone', state.reason);
        return;
    }
  }

  /** A deleted pod: keep a tombstone for a boot that has not claimed it yet, drop the rest. */
  #forget(name: string): void {
    if (this.#tracked.has(name)) {
      this.#tracked.delete(name);
      this.#seen.delete(name);
      return;
    }
    this.#tombstones.push(name);
    while (this.#tombstones.length > TOMBSTONES) this.#seen.delete(this.#tombstones.shift()!);
  }
}
