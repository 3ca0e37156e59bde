/**
 * What the real API server does to pods beyond storing them (its "pod strategy"): defaults filled
 * in on create, validation against the official schema plus the semantic checks the schema cannot
 * express, the few spec fields an update may change, and how long a deletion may take.
 */
import { Pod as PodModel } from 'kubernetes-models/v1/Pod';
import type { StatusCause } from './status.js';
import { ALL_VERBS, fieldsOf, invalidValue, isDnsLabel, isValidObjectName, labelMessage, required, schemaCauses, subdomainMessage, type ResourceDefinition } from './strategy.js';
import type { KubeObject, Pod, StoredObject } from './types.js';

const C_IDENTIFIER_ENV = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;

/** All reasons this pod would be refused with 422; empty when it is acceptable. */
export function validatePod(pod: KubeObject): StatusCause[] {
  const schema = schemaCauses(PodModel, pod);
  if (schema.length > 0) return schema;
  const causes: StatusCause[] = [];
  const p = pod as Pod;
  const name = p.metadata?.name ?? '';
  if (!isValidObjectName(name)) causes.push(invalidValue('metadata.name', name, subdomainMessage));
  const containers = p.spec?.containers ?? [];
  if (containers.length === 0) causes.push(required('spec.containers'));
  const seen = new Set<string>();
  containers.forEach((c, i) => {
    const at = `spec.containers[${i}]`;
    if (!c.name) causes.push(required(`${at}.name`));
    else if (!isDnsLabel(c.name)) causes.push(invalidValue(`${at}.name`, c.name, labelMessage));
    else if (seen.has(c.name)) causes.push({ reason: 'FieldValueDuplicate', message: `Duplicate value: ${JSON.stringify(c.name)}`, field: `${at}.name` });
    seen.add(c.name ?? '');
    if (!c.image) causes.push(required(`${at}.image`));
    (c.env ?? []).forEach((e, j) => {
      if (!C_IDENTIFIER_ENV.test(e.name)) {
        causes.push(
          invalidValue(`${at}.env[${j}].name`, e.name, "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit"),
        );
      }
      const ref = e.valueFrom?.fieldRef;
      if (e.value !== undefined && e.valueFrom !== undefined) {
        causes.push({ reason: 'FieldValueInvalid', message: "Invalid value: \"\": may not be specified when `value` is not empty", field: `${at}.env[${j}].valueFrom` });
      }
      if (ref && !SUPPORTED_FIELD_REFS.includes(ref.fieldPath) && !/^metadata\.(labels|annotations)\['[^']+'\]$/.test(ref.fieldPath)) {
        causes.push({ reason: 'FieldValueNotSupported', message: `Unsupported value: ${JSON.stringify(ref.fieldPath)}: supported values: ${SUPPORTED_FIELD_REFS.map((f) => JSON.stringify(f)).join(', ')}`, field: `${at}.env[${j}].valueFrom.fieldRef.fieldPath` });
      }
    });
  });
  const restartPolicy = p.spec?.restartPolicy;
  if (restartPolicy !== undefined && !['Always', 'OnFailure', 'Never'].includes(restartPolicy)) {
    causes.push({ reason: 'FieldValueNotSupported', message: `Unsupported value: ${JSON.stringify(restartPolicy)}: supported values: "Always", "OnFailure", "Never"`, field: 'spec.restartPolicy' });
  }
  const grace = p.spec?.terminationGracePeriodSeconds;
  if (grace !== undefined && grace < 0) causes.push(invalidValue('spec.terminationGracePeriodSeconds', grace, 'must be greater than or equal to 0'));
  return causes;
}

export const SUPPORTED_FIELD_REFS = [
  'metadata.name',
  'metadata.namespace',
  'metadata.uid',
  'spec.nodeName',
  'spec.serviceAccountName',
  'status.hostIP',
  'status.hostIPs',
  'status.podIP',
  'status.podIPs',
];

/** Defaults the real server fills in a pod spec (of a pod, or of a workload's pod template). */
export function defaultPodSpec(spec: NonNullable<Pod['spec']>): void {
  if (!Array.isArray(spec.containers)) return; // refused by validation
  spec.restartPolicy ??= 'Always';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.schedulerName ??= 'default-scheduler';
  spec.securityContext ??= {};
  for (const c of spec.containers) {
    c.terminationMessagePath ??= '/dev/termination-log';
    c.terminationMessagePolicy ??= 'File';
    c.imagePullPolicy ??= c.image?.endsWith(':latest') || !c.image?.includes(':') ? 'Always' : 'IfNotPresent';
    c.resources ??= {};
    // Requests default to the limits given (so a container with only limits is quota'd by them).
    if (c.resources.limits) c.resources.requests = { ...c.resources.limits, ...c.resources.requests };
    for (const variable of c.env ?? []) {
      if (variable.valueFrom?.fieldRef) variable.valueFrom.fieldRef.apiVersion ??= 'v1';
    }
  }
}

/** Defaults the real server fills in on create (spec and admission's), and the status every new pod starts with. */
export function defaultPod(pod: Pod): Pod {
  const spec = pod.spec;
  if (!spec || !Array.isArray(spec.containers)) return pod; // refused by validation
  defaultPodSpec(spec);
  spec.serviceAccountName ??= spec.serviceAccount ?? 'default';
  spec.serviceAccount = spec.serviceAccountName;
  spec.enableServiceLinks ??= true;
  spec.preemptionPolicy ??= 'PreemptLowerPriority';
  spec.priority ??= 0;
  pod.status = { phase: 'Pending', qosClass: qosClassOf(spec) };
  return pod;
}

/** Guaranteed when every container has equal CPU and memory requests and limits, BestEffort when none has any. */
function qosClassOf(spec: NonNullable<Pod['spec']>): 'BestEffort' | 'Burstable' | 'Guaranteed' {
  const resources = spec.containers.map((c) => c.resources ?? {});
  const any = resources.some((r) => Object.keys(r.requests ?? {}).length > 0 || Object.keys(r.limits ?? {}).length > 0);
  if (!any) return 'BestEffort';
  const guaranteed = resources.every((r) =>
    ['cpu', 'memory'].every((k) => r.limits?.[k] !== undefined && (r.requests?.[k] === undefined || String(r.requests[k]) === String(r.limits[k]))),
  );
  return guaranteed ? 'Guaranteed' : 'Burstable';
}

/**
 * The real server refuses pod updates that change anything in the spec but images, the active
 * deadline and added tolerations; the emulator keeps the same rule so that a backend does not
 * come to rely on edits a cluster would refuse.
 */
export function forbiddenSpecChange(before: Pod, after: Pod): StatusCause | undefined {
  const strip = (pod: Pod): unknown => {
    const spec = structuredClone(pod.spec ?? {}) as Record<string, unknown>;
    delete spec.activeDeadlineSeconds;
    delete spec.tolerations;
    for (const c of (spec.containers as { image?: string }[] | undefined) ?? []) delete c.image;
    return spec;
  };
  if (JSON.stringify(strip(before)) === JSON.stringify(strip(after))) return undefined;
  return {
    reason: 'FieldValueForbidden',
    message:
      'Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,' +
      '`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),' +
      '`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)',
    field: 'spec',
  };
}

/**
 * The grace period a deletion gets: the request's, else the pod's; zero for pods that never ran
 * on a node or already finished, which the real server removes at once.
 */
export function podGracePeriod(pod: Pod, requested: number | undefined): number {
  if (!pod.spec?.nodeName) return 0;
  if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') return 0;
  const grace = requested ?? pod.spec.terminationGracePeriodSeconds ?? 30;
  return Math.max(0, grace);
}

/** Pod updates: the schema and semantic checks, then only the spec changes the real server allows. */
function validatePodUpdate(next: KubeObject, current: StoredObject): StatusCause[] {
  const causes = validatePod(next);
  const change = causes.length === 0 ? forbiddenSpecChange(current as Pod, next as Pod) : undefined;
  if (change) causes.push(change);
  return causes;
}

export const PODS: ResourceDefinition = {
  group: '',
  version: 'v1',
  name: 'pods',
  singularName: 'pod',
  kind: 'Pod',
  namespaced: true,
  shortNames: ['po'],
  categories: ['all'],
  verbs: ALL_VERBS,
  subresources: { status: ['get', 'patch', 'update'], log: ['get'], eviction: ['create'] },
  fields: {
    ...fieldsOf('spec.nodeName', 'spec.restartPolicy', 'spec.schedulerName', 'spec.serviceAccountName', 'status.phase', 'status.podIP', 'status.nominatedNodeName'),
    'spec.hostNetwork': (o) => String((o as Pod).spec?.hostNetwork ?? false),
  },
  prepareForCreate: (object) => void defaultPod(object as Pod),
  validate: validatePod,
  validateUpdate: validatePodUpdate,
  gracePeriod: (object, requested) => podGracePeriod(object as Pod, requested),
};
