/**
 * What the real API server does to pods beyond storing them (its "pod strategy"): defaults filled
 * in on create, validation against the official schema plus the semantic checks the schema cannot
 * express, the few spec fields an update may change, and how long a deletion may take.
 */
import { Pod as PodModel } from 'kubernetes-models/v1/Pod';
import type { StatusCause } from './status.js';
import type { KubeObject, Pod } from './types.js';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const C_IDENTIFIER_ENV = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;

export const subdomainMessage =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start " +
  "and end with an alphanumeric character (e.g. 'example.com', regex used for validation is " +
  "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

const labelMessage =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end " +
  "with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is " +
  "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

export function isValidObjectName(name: string): boolean {
  return name.length <= 253 && DNS1123_SUBDOMAIN.test(name);
}

function required(field: string): StatusCause {
  return { reason: 'FieldValueRequired', message: 'Required value', field };
}

function invalidValue(field: string, value: unknown, why: string): StatusCause {
  return { reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(value)}: ${why}`, field };
}

/** `/spec/containers/0/image` (the schema validator's pointer) as the API's `spec.containers[0].image`. */
function fieldPathOf(pointer: string, extra?: string): string {
  const parts = pointer.split('/').filter((p) => p.length > 0);
  if (extra) parts.push(extra);
  let path = '';
  for (const part of parts) path += /^\d+$/.test(part) ? `[${part}]` : path ? `.${part}` : part;
  return path || '<root>';
}

interface SchemaError {
  instancePath?: string;
  keyword?: string;
  params?: { missingProperty?: string; type?: string; allowedValues?: unknown[] };
  message?: string;
}

function schemaCauses(pod: KubeObject): StatusCause[] {
  try {
    new PodModel(structuredClone(pod) as ConstructorParameters<typeof PodModel>[0]).validate();
    return [];
  } catch (error) {
    const errors = (error as { errors?: SchemaError[] }).errors ?? [];
    if (errors.length === 0) return [{ reason: 'FieldValueInvalid', message: String(error) }];
    return errors.map((e): StatusCause => {
      if (e.keyword === 'required' && e.params?.missingProperty) {
        return required(fieldPathOf(e.instancePath ?? '', e.params.missingProperty));
      }
      if (e.keyword === 'type') {
        return { reason: 'FieldValueTypeInvalid', message: `Invalid value: must be of type ${e.params?.type}`, field: fieldPathOf(e.instancePath ?? '') };
      }
      return { reason: 'FieldValueInvalid', message: `Invalid value: ${e.message ?? 'invalid'}`, field: fieldPathOf(e.instancePath ?? '') };
    });
  }
}

/** All reasons this pod would be refused with 422; empty when it is acceptable. */
export function validatePod(pod: KubeObject): StatusCause[] {
  const schema = schemaCauses(pod);
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
    else if (!DNS1123_LABEL.test(c.name) || c.name.length > 63) causes.push(invalidValue(`${at}.name`, c.name, labelMessage));
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

/** Defaults the real server fills in on create, and the status every new pod starts with. */
export function defaultPod(pod: Pod): Pod {
  const spec = pod.spec!;
  spec.restartPolicy ??= 'Always';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.schedulerName ??= 'default-scheduler';
  spec.serviceAccountName ??= spec.serviceAccount ?? 'default';
  spec.serviceAccount = spec.serviceAccountName;
  spec.securityContext ??= {};
  spec.enableServiceLinks ??= true;
  spec.preemptionPolicy ??= 'PreemptLowerPriority';
  spec.priority ??= 0;
  for (const c of spec.containers) {
    c.terminationMessagePath ??= '/dev/termination-log';
    c.terminationMessagePolicy ??= 'File';
    c.imagePullPolicy ??= c.image?.endsWith(':latest') || !c.image?.includes(':') ? 'Always' : 'IfNotPresent';
    c.resources ??= {};
    for (const variable of c.env ?? []) {
      if (variable.valueFrom?.fieldRef) variable.valueFrom.fieldRef.apiVersion ??= 'v1';
    }
  }
  pod.status = { phase: 'Pending', qosClass: 'BestEffort' };
  return pod;
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
