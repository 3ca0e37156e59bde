/**
 * What a runner pod's status means for its runner: still starting, up (Running with an IP), unable
 * to start (a waiting reason that will not clear by itself), or ended. Read from the watch, so a
 * boot fails as soon as the kubelet knows, instead of at the boot deadline (§12 row 27).
 */
import type { V1ContainerStateTerminated, V1ContainerStatus, V1Pod } from '@kubernetes/client-node';
import { RUNNER_CONTAINER } from './runner-pod-template.js';

export type RunnerPodState =
  | { kind: 'pending' }
  | { kind: 'running'; ip: string }
  /** It never ran and will not without a change (image, config, capacity). */
  | { kind: 'failed'; reason: string }
  /** It ran and its runner is gone. */
  | { kind: 'ended'; reason: string };

/** Waiting reasons a pod does not recover from on its own within a boot. */
export const FATAL_WAITING_REASONS: ReadonlySet<string> = new Set([
  'ErrImagePull',
  'ImagePullBackOff',
  'InvalidImageName',
  'ErrImageNeverPull',
  'CreateContainerConfigError',
  'CreateContainerError',
  'CrashLoopBackOff',
  'RunContainerError',
]);

const MESSAGE_LIMIT = 300;

export function runnerPodState(pod: V1Pod, options: { deleted?: boolean; waitWhenUnschedulable?: boolean } = {}): RunnerPodState {
  const name = pod.metadata?.name ?? '(unnamed)';
  const status = pod.status ?? {};
  const container = runnerStatus(pod);
  const terminated = container?.state?.terminated ?? undefined;
  if (options.deleted) {
    return { kind: 'ended', reason: `pod ${name} was deleted${terminated ? ` (${describeTermination(terminated)})` : ''}` };
  }
  if (status.phase === 'Failed' || status.phase === 'Succeeded') {
    const verb = status.phase === 'Failed' ? 'failed' : 'exited';
    const why = terminated ? describeTermination(terminated) : describe(status.reason, status.message) || status.phase;
    return { kind: 'ended', reason: `pod ${name} ${verb}: ${why}` };
  }
  if (terminated) {
    return { kind: 'ended', reason: `pod ${name}: container ${container!.name} ended: ${describeTermination(terminated)}` };
  }
  const waiting = container?.state?.waiting;
  if (waiting?.reason && FATAL_WAITING_REASONS.has(waiting.reason)) {
    const last = container?.lastState?.terminated;
    const previous = waiting.reason === 'CrashLoopBackOff' && last ? ` (last exit: ${describeTermination(last)})` : '';
    return { kind: 'failed', reason: `pod ${name} cannot start: ${describe(waiting.reason, waiting.message)}${previous}` };
  }
  const scheduled = status.conditions?.find((c) => c.type === 'PodScheduled');
  if (scheduled?.status === 'False' && scheduled.reason === 'Unschedulable' && !options.waitWhenUnschedulable) {
    return { kind: 'failed', reason: `pod ${name} cannot start: ${describe('Unschedulable', scheduled.message)}` };
  }
  if (pod.metadata?.deletionTimestamp) return { kind: 'failed', reason: `pod ${name} is being deleted` };
  if (status.phase === 'Running' && status.podIP && container?.state?.running) return { kind: 'running', ip: status.podIP };
  return { kind: 'pending' };
}

function runnerStatus(pod: V1Pod): V1ContainerStatus | undefined {
  const statuses = pod.status?.containerStatuses ?? [];
  return statuses.find((s) => s.name === RUNNER_CONTAINER) ?? statuses[0];
}

/** `OOMKilled (exit 137)`, `Error (exit 1): last words`. */
export function describeTermination(t: V1ContainerStateTerminated): string {
  const what = t.reason ?? (t.signal ? `signal ${t.signal}` : 'terminated');
  return `${what} (exit ${t.exitCode})${t.message ? `: ${truncate(t.message)}` : ''}`;
}

function describe(reason: string | undefined, message: string | undefined): string {
  if (!reason) return message ? truncate(message) : '';
  return message ? `${reason} (${truncate(message)})` : reason;
}

function truncate(text: string): string {
  const line = text.trim().replace(/\s+/g, ' ');
  return line.length > MESSAGE_LIMIT ? `${line.slice(0, MESSAGE_LIMIT)}...` : line;
}
