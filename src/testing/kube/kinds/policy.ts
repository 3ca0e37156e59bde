/**
 * `policy/v1` PodDisruptionBudget: `minAvailable` or `maxUnavailable` (a count or a percentage,
 * not both) over the pods its selector picks. Its status is kept by the disruption controller
 * (disruption.ts) and honoured by evictions.
 */
import { PodDisruptionBudget as PodDisruptionBudgetModel } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { LabelSelectorObject } from '../selectors.js';
import type { StatusCause } from '../status.js';
import { ALL_VERBS, fieldsOf, invalidValue, schemaAndName, type ResourceDefinition } from '../strategy.js';
import type { KubeObject } from '../types.js';

export interface BudgetSpec {
  minAvailable?: number | string;
  maxUnavailable?: number | string;
  selector?: LabelSelectorObject;
}

const schemaChecks = schemaAndName(PodDisruptionBudgetModel);

function amountCauses(field: string, value: number | string | undefined): StatusCause[] {
  if (value === undefined) return [];
  if (typeof value === 'number') return value < 0 ? [invalidValue(field, value, 'must be greater than or equal to 0')] : [];
  const percent = /^(\d+)%$/.exec(value);
  if (!percent) return [invalidValue(field, value, 'a valid percent string must be a numeric string followed by an ending \'%\' (e.g. \'1%\',  or \'93%\', regex used for validation is \'[0-9]+%\')')];
  return Number(percent[1]) > 100 ? [invalidValue(field, value, 'must not be greater than 100%')] : [];
}

function validate(object: KubeObject): StatusCause[] {
  const causes = schemaChecks(object);
  if (causes.length > 0) return causes;
  const spec = (object.spec ?? {}) as BudgetSpec;
  if (spec.minAvailable !== undefined && spec.maxUnavailable !== undefined) {
    causes.push(invalidValue('spec', spec, 'minAvailable and maxUnavailable cannot be both set'));
  }
  return [...causes, ...amountCauses('spec.minAvailable', spec.minAvailable), ...amountCauses('spec.maxUnavailable', spec.maxUnavailable)];
}

export const POD_DISRUPTION_BUDGETS: ResourceDefinition = {
  group: 'policy',
  version: 'v1',
  name: 'poddisruptionbudgets',
  singularName: 'poddisruptionbudget',
  kind: 'PodDisruptionBudget',
  deleteReturnsStatus: true,
  namespaced: true,
  shortNames: ['pdb'],
  verbs: ALL_VERBS,
  subresources: { status: ['get', 'patch', 'update'] },
  fields: fieldsOf(),
  tracksGeneration: true,
  prepareForCreate: (object) => {
    object.status = { disruptionsAllowed: 0, currentHealthy: 0, desiredHealthy: 0, expectedPods: 0 };
  },
  validate,
};
