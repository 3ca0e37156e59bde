/**
 * The deployment and replica-set controllers of kube-controller-manager, reduced to what the
 * emulated cluster needs:
 *  - a Deployment owns one ReplicaSet per pod template, named `NAME-HASH` with the template's
 *    `pod-template-hash` label in its selector and pods; a template change rolls out as the real
 *    controller's `rolloutRolling` does (the new ReplicaSet scaled up within `maxSurge`, the old
 *    ones down as far as `maxUnavailable` allows, unhealthy pods first), or with `Recreate` the
 *    old ones go to zero and the new one is scaled up once their pods are gone;
 *  - a ReplicaSet creates pods (`NAME-xxxxx`, owned by it) through the API, so admission, Pod
 *    Security and quota apply, and deletes the surplus, unready and newest first;
 *  - both report status (`replicas`, `readyReplicas`, `availableReplicas`, `updatedReplicas`,
 *    `observedGeneration`, conditions) as `kubectl rollout status` reads it.
 * Deleting a Deployment lets the garbage collector remove its ReplicaSets and their pods.
 * Reconciles run after the change that caused them, as an asynchronous controller's would.
 */
import { createHash } from 'node:crypto';
import { workloadSpec, type WorkloadSpec } from './kinds/apps.js';
import { matchesLabelSelector } from './selectors.js';
import { ApiError } from './status.js';
import { nowSeconds } from './strategy.js';
import { StoreController } from './controller.js';
import type { StoreChange } from './store.js';
import type { OwnerReference, Pod, StoredObject } from './types.js';

export const POD_TEMPLATE_HASH = 'pod-template-hash';
const REVISION = 'deployment.kubernetes.io/revision';
const HASH_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

interface Condition {
  type: string;
  status: 'True' | 'False';
  reason: string;
  message: string;
  lastUpdateTime?: string;
  lastTransitionTime?: string;
}

/** A short stable hash of a pod template, in the alphabet of generated names. */
export function podTemplateHash(template: unknown): string {
  const digest = createHash('sha256').update(JSON.stringify(template)).digest();
  let hash = '';
  for (let i = 0; i < 10; i++) hash += HASH_ALPHABET[digest[i]! % HASH_ALPHABET.length];
  return hash;
}

function controllerRef(owner: StoredObject): OwnerReference {
  return { apiVersion: owner.apiVersion, kind: owner.kind, name: owner.metadata.name, uid: owner.metadata.uid, controller: true, blockOwnerDeletion: true };
}

function controllerOf(object: StoredObject): OwnerReference | undefined {
  return object.metadata.ownerReferences?.find((r) => r.controller);
}

function isActive(pod: StoredObject): boolean {
  const phase = (pod as Pod).status?.phase;
  return !pod.metadata.deletionTimestamp && phase !== 'Succeeded' && phase !== 'Failed';
}

function isReady(pod: StoredObject): boolean {
  return (pod as Pod).status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** Keeps a condition's transition time when its status does not change, as controllers do. */
function withCondition(conditions: Condition[] | undefined, next: Condition): Condition[] {
  const now = nowSeconds();
  const previous = (conditions ?? []).find((c) => c.type === next.type);
  const same = previous && previous.status === next.status && previous.reason === next.reason && previous.message === next.message;
  const merged: Condition = same
    ? previous
    : { ...next, lastUpdateTime: now, lastTransitionTime: previous?.status === next.status ? (previous.lastTransitionTime ?? now) : now };
  return [...(conditions ?? []).filter((c) => c.type !== next.type), merged];
}

export class WorkloadControllers extends StoreController {
  private readonly pending = new Set<string>();
  private scheduled = false;

  protected onChange(change: StoreChange): void {
    const { resource, namespace, object } = change;
    if (resource === 'deployments') this.enqueue('deployments', namespace, object.metadata.name);
    else if (resource === 'replicasets' || resource === 'pods') {
      if (resource === 'replicasets') this.enqueue('replicasets', namespace, object.metadata.name);
      const owner = controllerOf(object);
      if (owner?.kind === 'ReplicaSet' && resource === 'pods') {
        this.enqueue('replicasets', namespace, owner.name);
        // A rollout's next step may wait on a pod alone (Recreate: the last old pod gone).
        const replicaSet = this.store.get('replicasets', namespace, owner.name);
        const deployment = replicaSet && controllerOf(replicaSet);
        if (deployment?.kind === 'Deployment') this.enqueue('deployments', namespace, deployment.name);
      }
      if (owner?.kind === 'Deployment' && resource === 'replicasets') this.enqueue('deployments', namespace, owner.name);
    }
  }

  private enqueue(resource: string, namespace: string, name: string): void {
    this.pending.add(`${resource}/${namespace}/${name}`);
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    if (this.stopped) return;
    const keys = [...this.pending];
    this.pending.clear();
    for (const key of keys) {
      const [resource, namespace, name] = key.split('/') as [string, string, string];
      const object = this.store.get(resource, namespace, name);
      if (!object || object.metadata.deletionTimestamp) continue;
      try {
        if (resource === 'deployments') this.syncDeployment(object);
        else this.syncReplicaSet(object);
      } catch (error) {
        process.emitWarning(`emulated cluster: ${resource} controller failed on ${namespace}/${name}: ${String(error)}`);
      }
    }
  }

  private owned(resource: string, owner: StoredObject): StoredObject[] {
    return this.store.list(resource, owner.metadata.namespace).filter((o) => controllerOf(o)?.uid === owner.metadata.uid);
  }

  private syncDeployment(deployment: StoredObject): void {
    const spec = workloadSpec(deployment);
    const namespace = deployment.metadata.namespace ?? '';
    const hash = podTemplateHash(spec.template);
    const sets = this.owned('replicasets', deployment);
    const revisions = sets.map((rs) => Number(rs.metadata.annotations?.[REVISION] ?? 0));
    const desired = spec.replicas ?? 1;
    const olds = sets.filter((rs) => rs.metadata.labels?.[POD_TEMPLATE_HASH] !== hash).sort((a, b) => revisionOf(a) - revisionOf(b));
    const oldPods = (): number => olds.reduce((n, rs) => n + this.owned('pods', rs).filter((p) => !['Succeeded', 'Failed'].includes((p as Pod).status?.phase ?? '')).length, 0);
    const plan = spec.strategy?.type === 'Recreate' ? recreatePlan(desired, olds, oldPods()) : rollingPlan(spec, desired, sets.find((rs) => rs.metadata.labels?.[POD_TEMPLATE_HASH] === hash), olds);
    let current = sets.find((rs) => rs.metadata.labels?.[POD_TEMPLATE_HASH] === hash);
    if (!current) {
      current = this.registry.create('replicasets', namespace, {
        apiVersion: 'apps/v1',
        kind: 'ReplicaSet',
        metadata: {
          name: `${deployment.metadata.name}-${hash}`,
          labels: { ...spec.template?.metadata?.labels, [POD_TEMPLATE_HASH]: hash },
          annotations: { [REVISION]: String(Math.max(0, ...revisions) + 1), 'deployment.kubernetes.io/desired-replicas': String(desired) },
          ownerReferences: [controllerRef(deployment)],
        },
        spec: {
          replicas: plan.current,
          selector: { ...spec.selector, matchLabels: { ...spec.selector?.matchLabels, [POD_TEMPLATE_HASH]: hash } },
          template: {
            ...spec.template,
            metadata: { ...spec.template?.metadata, labels: { ...spec.template?.metadata?.labels, [POD_TEMPLATE_HASH]: hash } },
          },
        },
      });
    } else if (specReplicas(current) !== plan.current) {
      this.registry.patch('replicasets', namespace, current.metadata.name, 'merge', { spec: { replicas: plan.current } });
    }
    for (const old of olds) {
      const replicas = plan.olds.get(old.metadata.uid) ?? specReplicas(old);
      if (replicas !== specReplicas(old)) this.registry.patch('replicasets', namespace, old.metadata.name, 'merge', { spec: { replicas } });
    }
    this.reportDeployment(deployment, current, this.owned('replicasets', deployment));
  }

  private reportDeployment(deployment: StoredObject, current: StoredObject, sets: StoredObject[]): void {
    const desired = workloadSpec(deployment).replicas ?? 1;
    const statusOf = (rs: StoredObject) => (rs.status ?? {}) as { replicas?: number; readyReplicas?: number; availableReplicas?: number };
    const sum = (pick: (s: ReturnType<typeof statusOf>) => number | undefined) => sets.reduce((n, rs) => n + (pick(statusOf(rs)) ?? 0), 0);
    const replicas = sum((s) => s.replicas);
    const available = sum((s) => s.availableReplicas);
    const updated = statusOf(this.store.get('replicasets', current.metadata.namespace ?? '', current.metadata.name) ?? current).replicas ?? 0;
    const maxUnavailable = workloadSpec(deployment).strategy?.type === 'Recreate' ? 0 : fenceposts(workloadSpec(deployment), desired).unavailable;
    const complete = updated === desired && replicas === desired && available >= desired;
    this.registry.mutate('deployments', deployment.metadata.namespace ?? '', deployment.metadata.name, (draft) => {
      const previous = (draft.status ?? {}) as { conditions?: Condition[] };
      let conditions = withCondition(
        previous.conditions,
        available >= desired - maxUnavailable
          ? { type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable', message: 'Deployment has minimum availability.' }
          : { type: 'Available', status: 'False', reason: 'MinimumReplicasUnavailable', message: 'Deployment does not have minimum availability.' },
      );
      conditions = withCondition(
        conditions,
        complete
          ? { type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable', message: `ReplicaSet "${current.metadata.name}" has successfully progressed.` }
          : { type: 'Progressing', status: 'True', reason: 'ReplicaSetUpdated', message: `ReplicaSet "${current.metadata.name}" is progressing.` },
      );
      const status: Record<string, unknown> = { observedGeneration: draft.metadata.generation ?? 1, replicas, updatedReplicas: updated };
      const ready = sum((s) => s.readyReplicas);
      if (ready > 0) status.readyReplicas = ready;
      if (available > 0) status.availableReplicas = available;
      if (replicas - available > 0) status.unavailableReplicas = replicas - available;
      status.conditions = conditions;
      draft.status = status;
      draft.metadata.annotations = { ...draft.metadata.annotations, [REVISION]: current.metadata.annotations?.[REVISION] ?? '1' };
    });
  }

  private syncReplicaSet(rs: StoredObject): void {
    const spec = workloadSpec(rs);
    const namespace = rs.metadata.namespace ?? '';
    const pods = this.owned('pods', rs).filter(isActive);
    const desired = spec.replicas ?? 1;
    let failure: string | undefined;
    for (let i = pods.length; i < desired; i++) {
      try {
        pods.push(
          this.registry.create('pods', namespace, {
            apiVersion: 'v1',
            kind: 'Pod',
            metadata: { generateName: `${rs.metadata.name}-`, labels: { ...spec.template?.metadata?.labels }, annotations: spec.template?.metadata?.annotations, ownerReferences: [controllerRef(rs)] },
            spec: structuredClone(spec.template?.spec),
          }),
        );
      } catch (error) {
        failure = error instanceof ApiError ? error.message : String(error);
        break;
      }
    }
    if (pods.length > desired) {
      // Unscheduled, then not ready, then newest first: what the real controller gives up first.
      const rank = (p: StoredObject): number => ((p as Pod).spec?.nodeName ? 0 : 2) + (isReady(p) ? 0 : 1);
      const surplus = [...pods]
        .sort((a, b) => rank(b) - rank(a) || b.metadata.creationTimestamp.localeCompare(a.metadata.creationTimestamp))
        .slice(0, pods.length - desired);
      for (const pod of surplus) this.registry.deleteQuietly('pods', namespace, pod.metadata.name);
    }
    const active = this.owned('pods', rs).filter(isActive);
    this.reportReplicaSet(rs, spec, active, failure);
  }

  private reportReplicaSet(rs: StoredObject, spec: WorkloadSpec, pods: StoredObject[], failure: string | undefined): void {
    this.registry.mutate('replicasets', rs.metadata.namespace ?? '', rs.metadata.name, (draft) => {
      const previous = (draft.status ?? {}) as { conditions?: Condition[] };
      const ready = pods.filter(isReady).length;
      const status: Record<string, unknown> = {
        replicas: pods.length,
        fullyLabeledReplicas: pods.filter((p) => matchesLabelSelector(spec.selector ?? {}, p.metadata.labels)).length,
        observedGeneration: draft.metadata.generation ?? 1,
      };
      if (ready > 0) status.readyReplicas = ready;
      if (ready > 0) status.availableReplicas = ready;
      const others = (previous.conditions ?? []).filter((c) => c.type !== 'ReplicaFailure');
      const conditions = failure
        ? withCondition(others, { type: 'ReplicaFailure', status: 'True', reason: 'FailedCreate', message: failure })
        : others;
      if (conditions.length > 0) status.conditions = conditions;
      draft.status = status;
    });
  }
}

function specReplicas(rs: StoredObject): number {
  return workloadSpec(rs).replicas ?? 0;
}

function revisionOf(rs: StoredObject): number {
  return Number(rs.metadata.annotations?.[REVISION] ?? 0);
}

function statusCount(rs: StoredObject | undefined, field: 'replicas' | 'availableReplicas'): number {
  return ((rs?.status ?? {}) as Record<string, number | undefined>)[field] ?? 0;
}

/** `maxSurge` / `maxUnavailable`: a count, or a percentage of `desired` (surge rounded up, unavailability down). */
function fencepost(value: number | string | undefined, desired: number, roundUp: boolean): number {
  if (typeof value === 'number') return value;
  const percent = /^(\d+)%$/.exec(value ?? '');
  if (!percent) return Number(value) || 0;
  const exact = (desired * Number(percent[1])) / 100;
  return roundUp ? Math.ceil(exact) : Math.floor(exact);
}

/** A RollingUpdate's `maxSurge` and `maxUnavailable` in pods (both zero would never progress: one may be unavailable). */
function fenceposts(spec: WorkloadSpec, desired: number): { surge: number; unavailable: number } {
  const rolling = spec.strategy?.rollingUpdate;
  const surge = fencepost(rolling?.maxSurge ?? '25%', desired, true);
  const unavailable = fencepost(rolling?.maxUnavailable ?? '25%', desired, false);
  return { surge, unavailable: surge === 0 && unavailable === 0 ? 1 : unavailable };
}

/** Replica counts for the current ReplicaSet and (by uid) the old ones. */
interface RolloutPlan {
  current: number;
  olds: Map<string, number>;
}

/**
 * One step of a rolling update, as the deployment controller's `rolloutRolling` takes it: the new
 * ReplicaSet grows while all pods stay within `desired + maxSurge`; the old ones shrink while the
 * available pods stay at `desired - maxUnavailable` or more, their unavailable pods first, oldest
 * ReplicaSet first. Each change of a pod or ReplicaSet brings the next step.
 */
function rollingPlan(spec: WorkloadSpec, desired: number, current: StoredObject | undefined, olds: StoredObject[]): RolloutPlan {
  const { surge, unavailable } = fenceposts(spec, desired);
  const planned = new Map(olds.map((rs) => [rs.metadata.uid, specReplicas(rs)]));
  let next = current ? specReplicas(current) : 0;
  const oldTotal = (): number => [...planned.values()].reduce((n, r) => n + r, 0);
  if (next > desired || oldTotal() === 0) next = desired;
  else if (next < desired) next += Math.max(0, Math.min(desired + surge - (next + oldTotal()), desired - next));
  // A step that scales the new ReplicaSet up goes no further; the next one (after its pods come) scales down.
  if (oldTotal() === 0 || (current && next > specReplicas(current))) return { current: next, olds: planned };

  // Counted from the ReplicaSets' specs, as the real controller counts them.
  const allPods = next + oldTotal();
  const minAvailable = desired - unavailable;
  const newUnavailable = next - statusCount(current, 'availableReplicas');
  let scaleDown = allPods - minAvailable - newUnavailable;
  if (scaleDown <= 0) return { current: next, olds: planned };
  // Unhealthy pods of the old ReplicaSets first: removing them costs no availability.
  for (const rs of olds) {
    if (scaleDown <= 0) break;
    const replicas = planned.get(rs.metadata.uid)!;
    const unhealthy = replicas - statusCount(rs, 'availableReplicas');
    if (unhealthy <= 0) continue;
    const down = Math.min(scaleDown, unhealthy);
    planned.set(rs.metadata.uid, replicas - down);
    scaleDown -= down;
  }
  // Then available ones, as far as the floor of available pods allows.
  const available = statusCount(current, 'availableReplicas') + olds.reduce((n, rs) => n + Math.min(statusCount(rs, 'availableReplicas'), planned.get(rs.metadata.uid)!), 0);
  let allowed = available - minAvailable;
  for (const rs of olds) {
    if (allowed <= 0) break;
    const replicas = planned.get(rs.metadata.uid)!;
    const down = Math.min(replicas, allowed);
    planned.set(rs.metadata.uid, replicas - down);
    allowed -= down;
  }
  return { current: next, olds: planned };
}

/** `Recreate`: every old ReplicaSet to zero, and the new one scaled up once no old pod is left (terminating ones included). */
function recreatePlan(desired: number, olds: StoredObject[], oldPods: number): RolloutPlan {
  return { current: oldPods > 0 ? 0 : desired, olds: new Map(olds.map((rs) => [rs.metadata.uid, 0])) };
}
