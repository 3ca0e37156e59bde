/**
 * `apps/v1` Deployment and ReplicaSet: defaults as the real registry fills them (one replica,
 * RollingUpdate 25%/25%, the pod template's own defaults), validation (the schema, a selector
 * that matches the template's labels and never changes) and `metadata.generation`, which
 * `kubectl rollout status` compares with `status.observedGeneration`. The controllers that act
 * on them are in workload-controllers.ts.
 */
import { Deployment as DeploymentModel } from 'kubernetes-models/apps/v1/Deployment';
import { ReplicaSet as ReplicaSetModel } from 'kubernetes-models/apps/v1/ReplicaSet';
import { defaultPodSpec } from '../pod-strategy.js';
import { matchesLabelSelector, type LabelSelectorObject } from '../selectors.js';
import type { StatusCause } from '../status.js';
import { ALL_VERBS, fieldsOf, invalidValue, nameCauses, schemaCauses, type ModelClass, type ResourceDefinition } from '../strategy.js';
import type { KubeObject, Pod, StoredObject } from '../types.js';

export interface WorkloadSpec {
  replicas?: number;
  selector?: LabelSelectorObject;
  template?: { metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> }; spec?: Pod['spec'] };
  strategy?: { type?: string; rollingUpdate?: { maxSurge?: number | string; maxUnavailable?: number | string } };
  revisionHistoryLimit?: number;
  progressDeadlineSeconds?: number;
  minReadySeconds?: number;
  paused?: boolean;
}

export function workloadSpec(object: KubeObject): WorkloadSpec {
  return (object.spec ?? {}) as WorkloadSpec;
}

function defaultWorkload(object: KubeObject, deployment: boolean): void {
  const spec = (object.spec ??= {}) as WorkloadSpec;
  spec.replicas ??= 1;
  if (deployment) {
    spec.strategy ??= { type: 'RollingUpdate' };
    if (spec.strategy.type === undefined) spec.strategy.type = 'RollingUpdate';
    if (spec.strategy.type === 'RollingUpdate') spec.strategy.rollingUpdate = { maxSurge: '25%', maxUnavailable: '25%', ...spec.strategy.rollingUpdate };
    spec.revisionHistoryLimit ??= 10;
    spec.progressDeadlineSeconds ??= 600;
  }
  if (spec.template?.spec) defaultPodSpec(spec.template.spec);
  if (spec.template) spec.template.metadata ??= {};
  object.status ??= deployment ? {} : { replicas: 0 };
}

function workloadValidator(Model: ModelClass): (object: KubeObject) => StatusCause[] {
  return (object) => {
    const schema = schemaCauses(Model, object);
    if (schema.length > 0) return schema;
    const causes = nameCauses(object);
    const spec = workloadSpec(object);
    const labels = spec.template?.metadata?.labels ?? {};
    const selector = spec.selector ?? {};
    if (Object.keys(selector.matchLabels ?? {}).length === 0 && (selector.matchExpressions ?? []).length === 0) {
      causes.push(invalidValue('spec.selector', selector, 'empty selector is invalid for deployment'));
    } else if (!matchesLabelSelector(selector, labels)) {
      causes.push({
        reason: 'FieldValueInvalid',
        message: `Invalid value: ${JSON.stringify(labels)}: \`selector\` does not match template \`labels\``,
        field: 'spec.template.metadata.labels',
      });
    }
    if (spec.replicas !== undefined && spec.replicas < 0) causes.push(invalidValue('spec.replicas', spec.replicas, 'must be greater than or equal to 0'));
    const restart = spec.template?.spec?.restartPolicy;
    if (restart !== undefined && restart !== 'Always') {
      causes.push({ reason: 'FieldValueNotSupported', message: `Unsupported value: ${JSON.stringify(restart)}: supported values: "Always"`, field: 'spec.template.spec.restartPolicy' });
    }
    return causes;
  };
}

/** apps/v1 selectors are immutable. */
function immutableSelector(validate: (object: KubeObject) => StatusCause[]): (next: KubeObject, current: StoredObject) => StatusCause[] {
  return (next, current) => {
    const causes = validate(next);
    const before = workloadSpec(current).selector;
    const after = workloadSpec(next).selector;
    if (JSON.stringify(before) !== JSON.stringify(after)) causes.push(invalidValue('spec.selector', after, 'field is immutable'));
    return causes;
  };
}

function workloadKind(kind: string, name: string, shortNames: string[], Model: ModelClass): ResourceDefinition {
  const deployment = kind === 'Deployment';
  const validate = workloadValidator(Model);
  return {
    group: 'apps',
    version: 'v1',
    name,
    singularName: kind.toLowerCase(),
    kind,
    namespaced: true,
    shortNames,
    categories: ['all'],
    verbs: ALL_VERBS,
    subresources: { status: ['get', 'patch', 'update'], scale: ['get', 'patch', 'update'] },
    fields: fieldsOf('status.replicas'),
    tracksGeneration: true,
    prepareForCreate: (object) => defaultWorkload(object, deployment),
    deleteReturnsStatus: true,
    validate,
    prepareForUpdate: (object) => defaultWorkload(object, deployment),
    validateUpdate: immutableSelector(validate),
  };
}

export const DEPLOYMENTS = workloadKind('Deployment', 'deployments', ['deploy'], DeploymentModel);
export const REPLICA_SETS = workloadKind('ReplicaSet', 'replicasets', ['rs'], ReplicaSetModel);
