/**
 * Pod status as a real kubelet writes it: the conditions in their usual order and wording, and
 * container states (waiting / running / terminated) with the real reasons.
 */
import type { ContainerStatus, Pod } from './types.js';

type PodStatus = NonNullable<Pod['status']>;
type Condition = NonNullable<PodStatus['conditions']>[number];
type ContainerState = NonNullable<ContainerStatus['state']>;

export function rfc3339(date: Date = new Date()): string {
  return date.toISOString().replace(/\.\d+Z$/, 'Z');
}

function condition(type: string, ok: boolean, reason?: string, message?: string): Condition {
  const c: Condition = { type, status: ok ? 'True' : 'False', lastProbeTime: null as unknown as string, lastTransitionTime: rfc3339() };
  if (reason) c.reason = reason;
  if (message) c.message = message;
  return c;
}

/** Replaces conditions by type, keeping lastTransitionTime when the status did not change. */
export function setConditions(status: PodStatus, updates: Condition[]): void {
  const current = status.conditions ?? [];
  const order = ['PodReadyToStartContainers', 'Initialized', 'Ready', 'ContainersReady', 'PodScheduled'];
  const byType = new Map(current.map((c) => [c.type, c]));
  for (const update of updates) {
    const previous = byType.get(update.type);
    if (previous && previous.status === update.status) update.lastTransitionTime = previous.lastTransitionTime;
    byType.set(update.type, update);
  }
  status.conditions = [...byType.values()].sort((a, b) => order.indexOf(a.type) - order.indexOf(b.type));
}

export function scheduledCondition(): Condition {
  return condition('PodScheduled', true);
}

export function unschedulableCondition(): Condition {
  return condition(
    'PodScheduled',
    false,
    'Unschedulable',
    '0/1 nodes are available: 1 node(s) were unschedulable. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.',
  );
}

/** Conditions once the sandbox exists, for a pod whose containers are (`ready`) or are not ready. */
export function lifecycleConditions(containerNames: string[], ready: boolean, terminalReason?: 'PodCompleted'): Condition[] {
  const notReady = `containers with unready status: [${containerNames.join(' ')}]`;
  const reason = terminalReason ?? 'ContainersNotReady';
  return [
    condition('PodReadyToStartContainers', terminalReason === undefined),
    condition('Initialized', true),
    ready ? condition('Ready', true) : condition('Ready', false, reason, terminalReason ? undefined : notReady),
    ready ? condition('ContainersReady', true) : condition('ContainersReady', false, reason, terminalReason ? undefined : notReady),
  ];
}

export function waiting(reason: string, message?: string): ContainerState {
  return { waiting: message ? { reason, message } : { reason } };
}

export function running(startedAt: Date): ContainerState {
  return { running: { startedAt: rfc3339(startedAt) } };
}

export interface Termination {
  exitCode: number;
  signal?: number;
  reason: string;
  message?: string;
  startedAt?: Date;
  finishedAt: Date;
  containerID?: string;
}

export function terminated(t: Termination): ContainerState {
  const state: NonNullable<ContainerState['terminated']> = {
    exitCode: t.exitCode,
    reason: t.reason,
    startedAt: t.startedAt ? rfc3339(t.startedAt) : (null as unknown as string),
    finishedAt: rfc3339(t.finishedAt),
  };
  if (t.signal !== undefined) state.signal = t.signal;
  if (t.message) state.message = t.message;
  if (t.containerID) state.containerID = t.containerID;
  return { terminated: state };
}

/** Fake but stable image ids, so that `kubectl describe` has something in its Image ID line. */
export function imageID(image: string): string {
  let hash = 0n;
  for (const ch of image) hash = (hash * 131n + BigInt(ch.codePointAt(0)!)) % (1n << 256n);
  return `emulator.local/${image}@sha256:${hash.toString(16).padStart(64, '0')}`;
}
