/**
 * What a runner pod's status means for its runner: still starting (and what it waits for), up
 * (Running with an IP), unable to start (a state that will not heal by itself), or ended. Read from
 * the watch, so a boot fails as soon as the kubelet knows what cannot heal instead of at the boot
 * deadline, and waits through what can: an Unschedulable pod on an autoscaled cluster gets a node
 * within a minute or two, and a failed image pull is retried by the kubelet with back-off.
 */
import type { V1ContainerStateTerminated, V1ContainerStatus, V1Pod, V1PodCondition } from '@kubernetes/client-node';

/** The runner container's name in every runner pod. */
export const RUNNER_CONTAINER = 'runner';

export type RunnerPodState =
  /** Not running yet; `waitingFor` is the scheduler's or the kubelet's word on why, when there is one. */
  | { kind: 'pending'; waitingFor?: string; pullFailure?: boolean }
  | { kind: 'running'; ip: string }
  /** It never ran and will not without a change (image name, config, spec). */
  | { kind: 'failed'; reason: string }
  /** It ran and its runner is gone (or going: deleted, evicted). */
  | { kind: 'ended'; reason: string };

/** Waiting reasons a pod does not recover from on its own. */
export const FATAL_WAITING_REASONS: ReadonlySet<string> = new Set([
  'InvalidImageName',
  'ErrImageNeverPull',
  'CreateContainerConfigError',
  'CreateContainerError',
  'CrashLoopBackOff',
  'RunContainerError',
]);

/**
 * Pull failures: the kubelet retries them with back-off (a registry outage, a node's network
 * starting), so they fail a boot only after a few attempts (counted by the supervisor).
 */
export const PULL_WAITING_REASONS: ReadonlySet<string> = new Set(['ErrImagePull', 'ImagePullBackOff']);

const MESSAGE_LIMIT = 300;

export function runnerPodState(pod: V1Pod, options: { deleted?: boolean; waitWhenUnschedulable?: boolean } = {}): RunnerPodState {
  const name = pod.metadata?.name ?? '(unnamed)';
  const status = pod.status ?? {};
  const container = runnerStatus(pod);
  const terminated = container?.state?.terminated ?? undefined;
  const disruption = disruptionOf(pod);
  if (options.deleted) {
    const how = disruption ? `was ${disruption}` : 'was deleted';
    return { kind: 'ended', reason: `pod ${name} ${how}${terminated ? ` (${describeTermination(terminated)})` : ''}` };
  }
  if (status.phase === 'Failed' || status.phase === 'Succeeded') {
    if (status.reason === 'Evicted') return { kind: 'ended', reason: `pod ${name} was evicted by the kubelet${status.message ? ` (${truncate(status.message)})` : ''}` };
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
  if (pod.metadata?.deletionTimestamp) {
    return { kind: 'failed', reason: `pod ${name} is being ${disruption ?? 'deleted'}` };
  }
  const scheduled = status.conditions?.find((c) => c.type === 'PodScheduled');
  if (scheduled?.status === 'False' && scheduled.reason === 'Unschedulable') {
    const why = describe('Unschedulable', scheduled.message);
    if (!options.waitWhenUnschedulable) return { kind: 'failed', reason: `pod ${name} cannot start: ${why}` };
    return { kind: 'pending', waitingFor: `the scheduler: ${why}` };
  }
  if (status.phase === 'Running' && status.podIP && container?.state?.running) return { kind: 'running', ip: status.podIP };
  if (waiting?.reason) {
    return { kind: 'pending', waitingFor: `the kubelet: ${describe(waiting.reason, waiting.message)}`, pullFailure: PULL_WAITING_REASONS.has(waiting.reason) };
  }
  if (!scheduled || scheduled.status !== 'True') return { kind: 'pending', waitingFor: 'the scheduler to place it on a node' };
  return { kind: 'pending', waitingFor: `the kubelet to start it on node ${pod.spec?.nodeName ?? '(unknown)'}` };
}

/** `evicted (EvictionByEvictionAPI: ...)`, `preempted (...)`: the DisruptionTarget condition the API server sets before it deletes a pod for a disruption. */
function disruptionOf(pod: V1Pod): string | undefined {
  const condition: V1PodCondition | undefined = pod.status?.conditions?.find((c) => c.type === 'DisruptionTarget' && c.status === 'True');
  if (!condition) return undefined;
  const verb = condition.reason === 'PreemptionByScheduler' ? 'preempted' : condition.reason === 'DeletionByTaintManager' ? 'deleted by the taint manager' : 'evicted';
  return `${verb} (${describe(condition.reason, condition.message) || 'DisruptionTarget'})`;
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
