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
export function resolveEnvironment(pod: Pod, container: Container, base: Record<string, string>, read: ObjectKeyReader): Map<string, string> {
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
      value = '0';
    } else {
      value = expandReferences(variable.value ?? '', resolvedSoFar);
    }
    env.set(variable.name, value);
    resolvedSoFar.set(variable.name, value);
  }
  return env;
}
