/**
 * A container's environment as the kubelet builds it: service variables first, then `envFrom`,
 * then `env` in order, each value able to refer to earlier ones with `$(VAR)`; `fieldRef`,
 * `secretKeyRef` and `configMapKeyRef` read the pod and the API. `command` and `args` are
 * expanded the same way.
 */
import type { Container, Pod } from './types.js';

/** Reads a key of a Secret or ConfigMap; undefined when the object or key does not exist. */
export type ObjectKeyReader = (kind: 'secrets' | 'configmaps', namespace: string, name: string) => Record<string, string> | undefined;

export class ContainerConfigError extends Error {}

/** Kubernetes' `$(VAR)` expansion: unknown references stay as written, `$$` escapes a `$`. */
export function expandReferences(input: string, variables: ReadonlyMap<string, string>): string {
  let output = '';
  for (let i = 0; i < input.length; i++) {
    const ch = input[i]!;
    if (ch !== '$' || i + 1 >= input.length) {
      output += ch;
      continue;
    }
    const next = input[i + 1]!;
    if (next === '$') {
      output += '$';
      i++;
    } else if (next === '(') {
      const close = input.indexOf(')', i + 2);
      if (close < 0) {
        output += input.slice(i);
        break;
      }
      const name = input.slice(i + 2, close);
      output += variables.get(name) ?? `$(${name})`;
      i = close;
    } else {
      output += ch;
    }
  }
  return output;
}

/** The value a `fieldRef` names, read from the pod as the kubelet knows it. */
export function fieldValue(pod: Pod, fieldPath: string): string {
  const meta = pod.metadata ?? {};
  const labelOrAnnotation = /^metadata\.(labels|annotations)\['([^']+)'\]$/.exec(fieldPath);
  if (labelOrAnnotation) return (labelOrAnnotation[1] === 'labels' ? meta.labels : meta.annotations)?.[labelOrAnnotation[2]!] ?? '';
  switch (fieldPath) {
    case 'metadata.name':
      return meta.name ?? '';
    case 'metadata.namespace':
      return meta.namespace ?? '';
    case 'metadata.uid':
      return meta.uid ?? '';
    case 'spec.nodeName':
      return pod.spec?.nodeName ?? '';
    case 'spec.serviceAccountName':
      return pod.spec?.serviceAccountName ?? '';
    case 'status.hostIP':
      return pod.status?.hostIP ?? '';
    case 'status.hostIPs':
      return (pod.status?.hostIPs ?? []).map((i) => i.ip).join(',');
    case 'status.podIP':
      return pod.status?.podIP ?? '';
    case 'status.podIPs':
      return (pod.status?.podIPs ?? []).map((i) => i.ip).join(',');
    default:
      throw new ContainerConfigError(`unsupported fieldPath: ${fieldPath}`);
  }
}

/**
 * Builds the environment. `base` holds what comes before the pod's own variables (image ENV,
 * service variables); throws {@link ContainerConfigError} where the real kubelet would report
 * `CreateContainerConfigError` (a missing Secret or key that is not optional).
 */
export function resolveEnvironment(
  pod: Pod,
  container: Container,
  base: Record<string, string>,
  read: ObjectKeyReader,
  allocatable: Record<string, string> = {},
): Map<string, string> {
  const namespace = pod.metadata?.namespace ?? 'default';
  const env = new Map<string, string>(Object.entries(base));
  for (const source of container.envFrom ?? []) {
    const ref = source.secretRef ?? source.configMapRef;
    if (!ref?.name) continue;
    const kind = source.secretRef ? 'secrets' : 'configmaps';
    const data = read(kind, namespace, ref.name);
    if (!data) {
      if (ref.optional) continue;
      throw new ContainerConfigError(`${kind === 'secrets' ? 'secret' : 'configmap'} "${ref.name}" not found`);
    }
    for (const [key, value] of Object.entries(data)) env.set(`${source.prefix ?? ''}${key}`, value);
  }
  const resolvedSoFar = new Map<string, string>(env);
  for (const variable of container.env ?? []) {
    let value: string;
    const from = variable.valueFrom;
    if (from?.fieldRef) value = fieldValue(pod, from.fieldRef.fieldPath);
    else if (from?.secretKeyRef || from?.configMapKeyRef) {
      const ref = (from.secretKeyRef ?? from.configMapKeyRef)!;
      const kind = from.secretKeyRef ? 'secrets' : 'configmaps';
      const data = read(kind, namespace, ref.name ?? '');
      const found = data?.[ref.key];
      if (found === undefined) {
        if (ref.optional) continue;
        const what = kind === 'secrets' ? 'secret' : 'configmap';
        throw new ContainerConfigError(data ? `couldn't find key ${ref.key} in ${what} ${namespace}/${ref.name}` : `${what} "${ref.name}" not found`);
      }
      value = found;
    } else if (from?.resourceFieldRef) {
      value = resourceFieldValue(pod, container, from.resourceFieldRef, allocatable);
    } else {
      value = expandReferences(variable.value ?? '', resolvedSoFar);
    }
    env.set(variable.name, value);
    resolvedSoFar.set(variable.name, value);
  }
  return env;
}

const BINARY_SUFFIXES: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
const DECIMAL_SUFFIXES: Record<string, number> = { n: 1e-9, u: 1e-6, m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };

/** A resource quantity (`500m`, `128Mi`, `1e3`, `2`) as a number; undefined when it is not one. */
export function parseQuantity(text: string): number | undefined {
  const match = /^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)$/.exec(text.trim());
  if (!match) return undefined;
  const number = Number(match[1]);
  if (match[2]) return number * 10 ** Number(match[2].slice(1));
  const suffix = match[3] ?? '';
  return number * (BINARY_SUFFIXES[suffix] ?? DECIMAL_SUFFIXES[suffix] ?? 1);
}

type ResourceFieldSelector = NonNullable<NonNullable<NonNullable<Container['env']>[number]['valueFrom']>['resourceFieldRef']>;

/**
 * A `resourceFieldRef` value as the kubelet computes it: the named container's limit or request;
 * a limit that is not set is the node's allocatable; a request that is not set is its limit when
 * one is (the API server's defaulting), else 0. Divided by `divisor` (default 1) and rounded up;
 * CPU is counted in millicores first, so `limits.cpu` with divisor `1m` gives millicores.
 */
export function resourceFieldValue(pod: Pod, container: Container, ref: ResourceFieldSelector, allocatable: Record<string, string>): string {
  const target = ref.containerName ? pod.spec?.containers.find((c) => c.name === ref.containerName) : container;
  if (!target) throw new ContainerConfigError(`container ${ref.containerName} not found in pod ${pod.metadata?.name ?? ''}`);
  const [kind, resource] = ref.resource.split('.', 2) as [string, string | undefined];
  if ((kind !== 'limits' && kind !== 'requests') || !resource) throw new ContainerConfigError(`unsupported container resource : ${ref.resource}`);
  const limits = (target.resources?.limits ?? {}) as Record<string, string | number>;
  const requests = (target.resources?.requests ?? {}) as Record<string, string | number>;
  let raw: string | number | undefined;
  if (kind === 'limits') raw = limits[resource] ?? allocatable[resource];
  else raw = requests[resource] ?? limits[resource] ?? 0;
  const amount = parseQuantity(String(raw ?? 0)) ?? 0;
  const divisor = parseQuantity(String(ref.divisor ?? '1')) || 1;
  if (resource === 'cpu') {
    const milli = Math.ceil(amount * 1000 - 1e-9);
    return String(Math.ceil(milli / Math.round(divisor * 1000 || 1) - 1e-9));
  }
  return String(Math.ceil(amount / divisor - 1e-9));
}
