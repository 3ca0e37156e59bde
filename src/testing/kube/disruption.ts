/**
 * Voluntary disruptions: the `pods/eviction` subresource (`policy/v1` Eviction, what `kubectl
 * drain` posts) and the disruption controller that keeps PodDisruptionBudget status. An eviction
 * deletes the pod (with the Eviction's delete options) unless a budget covering it would drop
 * below its healthy minimum, in which case it gets the real 429 and `kubectl drain` retries.
 * A pod that is not ready may go while the budget is met (policy `IfHealthyBudget`).
 */
import type { BudgetSpec } from './kinds/policy.js';
import type { DeleteOptions, Registry } from './registry.js';
import { matchesLabelSelector } from './selectors.js';
import { ApiError, apiErrors, failure } from './status.js';
import { StoreController } from './controller.js';
import type { StoreChange } from './store.js';
import type { Pod, StoredObject } from './types.js';

interface BudgetState {
  expectedPods: number;
  currentHealthy: number;
  desiredHealthy: number;
  disruptionsAllowed: number;
}

function isReady(pod: StoredObject): boolean {
  return (pod as Pod).status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** A count or a percentage of `total`, rounded up as the disruption controller does. */
function scaled(value: number | string, total: number): number {
  if (typeof value === 'number') return value;
  const percent = /^(\d+)%$/.exec(value);
  return percent ? Math.ceil((total * Number(percent[1])) / 100) : Number(value) || 0;
}

function budgetPods(registry: Registry, budget: StoredObject): StoredObject[] {
  const spec = (budget.spec ?? {}) as BudgetSpec;
  return registry
    .items('pods', budget.metadata.namespace)
    .filter((p) => !p.metadata.deletionTimestamp && matchesLabelSelector(spec.selector ?? {}, p.metadata.labels));
}

export function budgetState(registry: Registry, budget: StoredObject): BudgetState {
  const spec = (budget.spec ?? {}) as BudgetSpec;
  const pods = budgetPods(registry, budget).filter((p) => !['Succeeded', 'Failed'].includes((p as Pod).status?.phase ?? ''));
  const expectedPods = pods.length;
  const currentHealthy = pods.filter(isReady).length;
  const desiredHealthy =
    spec.maxUnavailable !== undefined ? Math.max(0, expectedPods - scaled(spec.maxUnavailable, expectedPods)) : scaled(spec.minAvailable ?? 1, expectedPods);
  return { expectedPods, currentHealthy, desiredHealthy, disruptionsAllowed: Math.max(0, currentHealthy - desiredHealthy) };
}

function budgetRefusal(name: string, state: BudgetState): ApiError {
  return new ApiError(
    failure(429, 'TooManyRequests', "Cannot evict pod as it would violate the pod's disruption budget.", {
      causes: [{ reason: 'DisruptionBudget', message: `The disruption budget ${name} needs ${state.desiredHealthy} healthy pods and has ${state.currentHealthy} currently` }],
    }),
  );
}

/** Answers `POST pods/NAME/eviction` with the Status of a 201 once the pod's deletion has started; throws 429 (budget) or 404. */
export function evict(registry: Registry, namespace: string, name: string, body: unknown): unknown {
  const pod = registry.get('pods', namespace, name);
  const eviction = (body ?? {}) as { metadata?: { name?: string }; deleteOptions?: DeleteOptions & { dryRun?: string[] } };
  if (eviction.metadata?.name !== undefined && eviction.metadata.name !== name) {
    throw apiErrors.badRequest(`name in URL does not match name in Eviction object`);
  }
  const phase = (pod as Pod).status?.phase;
  const terminal = phase === 'Succeeded' || phase === 'Failed' || phase === 'Pending';
  if (!terminal && !pod.metadata.deletionTimestamp) {
    const budgets = registry
      .items('poddisruptionbudgets', namespace)
      .filter((b) => matchesLabelSelector(((b.spec ?? {}) as BudgetSpec).selector ?? {}, pod.metadata.labels));
    if (budgets.length > 1) {
      throw apiErrors.internal('This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.');
    }
    const budget = budgets[0];
    if (budget) {
      const state = budgetState(registry, budget);
      const allowed = isReady(pod) ? state.disruptionsAllowed > 0 : state.currentHealthy >= state.desiredHealthy;
      if (!allowed) throw budgetRefusal(budget.metadata.name, state);
    }
  }
  const options: DeleteOptions = {};
  const requested = eviction.deleteOptions;
  if (requested?.gracePeriodSeconds !== undefined) options.gracePeriodSeconds = requested.gracePeriodSeconds;
  if (requested?.preconditions) options.preconditions = requested.preconditions;
  // As kube-apiserver's eviction storage does (PodDisruptionConditions, GA in 1.31): mark why the
  // pod goes before deleting it, so that its owner can tell an eviction from any other deletion.
  registry.mutate('pods', namespace, name, (draft) => {
    const status = ((draft as Pod).status ??= {});
    const conditions = (status.conditions ?? []).filter((c) => c.type !== 'DisruptionTarget');
    conditions.push({ type: 'DisruptionTarget', status: 'True', reason: 'EvictionByEvictionAPI', message: 'Eviction API: evicting', lastTransitionTime: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z') });
    status.conditions = conditions;
  });
  registry.delete('pods', namespace, name, options);
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 };
}

/** Keeps every PodDisruptionBudget's status (healthy counts, disruptions allowed, condition) current. */
export class DisruptionController extends StoreController {
  protected onChange(change: StoreChange): void {
    if (change.resource !== 'pods' && change.resource !== 'poddisruptionbudgets') return;
    if (change.resource === 'poddisruptionbudgets' && change.type === 'DELETED') return;
    for (const budget of this.store.list('poddisruptionbudgets', change.namespace)) {
      const state = budgetState(this.registry, budget);
      this.registry.mutate('poddisruptionbudgets', change.namespace, budget.metadata.name, (draft) => {
        const previous = ((draft.status ?? {}) as { conditions?: { type: string; status: string; lastTransitionTime?: string }[] }).conditions ?? [];
        const allowed = state.disruptionsAllowed > 0 ? 'True' : 'False';
        const before = previous.find((c) => c.type === 'DisruptionAllowed');
        const condition = {
          type: 'DisruptionAllowed',
          status: allowed,
          reason: allowed === 'True' ? 'SufficientPods' : 'InsufficientPods',
          message: '',
          observedGeneration: draft.metadata.generation ?? 1,
          lastTransitionTime: before?.status === allowed ? before.lastTransitionTime : new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
        };
        draft.status = { observedGeneration: draft.metadata.generation ?? 1, ...state, conditions: [condition] };
      });
    }
  }
}
