/**
 * The backend's supervisor actor (the design card: "the K8s backend acts as a supervisor actor
 * that spawns pods and tracks their liveness through watches"). One nact actor per pool takes,
 * in order, the boots waiting for their pod and every watch event, so each runner pod moves
 * through booting -> up -> ended exactly once, however events and API replies interleave: a
 * boot learns its pod is Running (or why it cannot start), and a pod that ends after its boot is
 * reported to the pool with its reason (`pod X failed: OOMKilled (exit 137)`).
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

type Message =
  | { type: 'expect'; runnerId: string; pod: string; settle: (outcome: BootOutcome) => void }
  | { type: 'event'; event: PodEventType; pod: V1Pod }
  | { type: 'release'; pod: string };

interface TrackedPod {
  runnerId: string;
  phase: 'booting' | 'up' | 'ended';
  settle?: (outcome: BootOutcome) => void;
}

interface LastSeen {
  pod: V1Pod;
  deleted: boolean;
}

export interface RunnerPodSupervisorOptions {
  /** The actor system to live in (the parent node's). */
  system: Parameters<typeof spawn>[0];
  name: string;
  logger: Logger;
  waitWhenUnschedulable: boolean;
  runnerExited: (runnerId: string, reason: string) => void;
}

/** Deleted pods remembered for a boot that learns its pod's name late. */
const TOMBSTONES = 256;

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

  /** A watch event (from the PodWatcher). */
  observe(event: PodEventType, pod: V1Pod): void {
    dispatch(this.#actor, { type: 'event', event, pod });
  }

  /** The pool is done with this pod (shut down, or its boot was abandoned): report nothing more. */
  release(pod: string): void {
    dispatch(this.#actor, { type: 'release', pod });
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
        const tracked: TrackedPod = { runnerId: message.runnerId, phase: 'booting', settle: message.settle };
        this.#tracked.set(message.pod, tracked);
        const last = this.#seen.get(message.pod);
        if (last) this.#evaluate(tracked, last);
        return;
      }
      case 'event': {
        const name = message.pod.metadata?.name;
        if (!name) return;
        const last: LastSeen = { pod: message.pod, deleted: message.event === 'DELETED' };
        this.#seen.set(name, last);
        const tracked = this.#tracked.get(name);
        if (tracked) this.#evaluate(tracked, last);
        if (last.deleted) this.#forget(name);
        return;
      }
      case 'release': {
        const tracked = this.#tracked.get(message.pod);
        if (tracked) {
          tracked.phase = 'ended';
          tracked.settle = undefined;
          this.#tracked.delete(message.pod);
        }
        return;
      }
    }
  }

  #evaluate(tracked: TrackedPod, last: LastSeen): void {
    const state = runnerPodState(last.pod, { deleted: last.deleted, waitWhenUnschedulable: this.#o.waitWhenUnschedulable });
    if (tracked.phase === 'booting') {
      if (state.kind === 'pending') return;
      const settle = tracked.settle!;
      tracked.settle = undefined;
      if (state.kind === 'running') {
        tracked.phase = 'up';
        settle({ ok: true, ip: state.ip });
      } else {
        tracked.phase = 'ended';
        settle({ ok: false, reason: state.reason });
      }
      return;
    }
    if (tracked.phase !== 'up') return;
    // Deleted by someone else (eviction, node drain, the parent's deletion cascading): the
    // runner drains in its grace period, but the pool must stop sending it work and replace it now.
    const deleting = last.pod.metadata?.deletionTimestamp ? `pod ${last.pod.metadata.name} is being deleted` : undefined;
    const reason = state.kind === 'ended' ? state.reason : deleting;
    if (reason === undefined) return;
    tracked.phase = 'ended';
    this.#o.logger.debug(`runner ${tracked.runnerId}: ${reason}`);
    this.#o.runnerExited(tracked.runnerId, reason);
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
