/**
 * What a runner pod inherits from the parent pod beyond its app container's image, command, env
 * and resources, and what it must never inherit. Runner pods run the same code as the parent, so
 * they need the same node (GPU tolerations, arm64 node selectors), the same security settings (a
 * namespace enforcing Pod Security `restricted` refuses a pod without them) and the same mounted
 * config. They must not take what names the parent itself (`nodeName`, `hostname`), what serves
 * traffic (probes, container ports, lifecycle hooks), or the service-account token volume that
 * admission injected into the parent (a runner calls no API; admission adds its own when asked).
 */
import type { V1Container, V1EnvVar, V1PodSpec, V1Volume, V1VolumeMount } from '@kubernetes/client-node';

/** Settings a runner pod inherits from the parent pod, each on by default. */
export const INHERITED_SETTINGS = [
  'nodeSelector',
  'tolerations',
  'affinity',
  'securityContext',
  'volumes',
  'priorityClassName',
  'runtimeClassName',
  'dns',
  'hostAliases',
  'enableServiceLinks',
] as const;

export type InheritedSetting = (typeof INHERITED_SETTINGS)[number];

const SERVICE_ACCOUNT_MOUNT = '/var/run/secrets/kubernetes.io/serviceaccount';

/** Pod-level fields of the parent copied into runner pods (`volumes` only those a runner may use). */
export function inheritedPodFields(parent: V1PodSpec, settings: ReadonlySet<InheritedSetting>): Partial<V1PodSpec> {
  const out: Partial<V1PodSpec> = {};
  const copy = <K extends keyof V1PodSpec>(key: K) => {
    if (parent[key] !== undefined) out[key] = structuredClone(parent[key]);
  };
  if (settings.has('nodeSelector')) copy('nodeSelector');
  if (settings.has('tolerations')) copy('tolerations');
  if (settings.has('affinity')) copy('affinity');
  if (settings.has('securityContext')) copy('securityContext');
  if (settings.has('priorityClassName')) copy('priorityClassName');
  if (settings.has('runtimeClassName')) copy('runtimeClassName');
  if (settings.has('dns')) {
    copy('dnsPolicy');
    copy('dnsConfig');
  }
  if (settings.has('hostAliases')) copy('hostAliases');
  if (settings.has('enableServiceLinks')) copy('enableServiceLinks');
  if (settings.has('volumes')) {
    const volumes = withoutInjectedVolumes(parent.volumes ?? [], parent.containers ?? []);
    if (volumes.length > 0) out.volumes = structuredClone(volumes);
  }
  return out;
}

/** Container-level fields of the app container copied into the runner container. */
export function inheritedContainerFields(app: V1Container, parent: V1PodSpec, settings: ReadonlySet<InheritedSetting>): Partial<V1Container> {
  const out: Partial<V1Container> = {};
  if (settings.has('securityContext') && app.securityContext) out.securityContext = structuredClone(app.securityContext);
  if (settings.has('volumes')) {
    const kept = new Set(withoutInjectedVolumes(parent.volumes ?? [], parent.containers ?? []).map((v) => v.name));
    const mounts = (app.volumeMounts ?? []).filter((m) => kept.has(m.name));
    if (mounts.length > 0) out.volumeMounts = structuredClone(mounts);
  }
  return out;
}

/**
 * A pod spec made safe to create as a new pod: what names or serves the parent is removed, also
 * when a `podTemplate` returned the parent's own spec.
 */
export function sanitizeSpec(spec: V1PodSpec): V1PodSpec {
  const clean: V1PodSpec = { ...spec };
  delete clean.nodeName;
  delete clean.hostname;
  delete clean.subdomain;
  delete clean.ephemeralContainers;
  if (clean.volumes) {
    const volumes = withoutInjectedVolumes(clean.volumes, clean.containers ?? []);
    const names = new Set(volumes.map((v) => v.name));
    if (volumes.length > 0) clean.volumes = volumes;
    else delete clean.volumes;
    clean.containers = (clean.containers ?? []).map((c) => withMounts(c, names));
    if (clean.initContainers) clean.initContainers = clean.initContainers.map((c) => withMounts(c, names));
  } else {
    clean.containers = (clean.containers ?? []).map((c) => withMounts(c, new Set()));
  }
  return clean;
}

/** The runner container without what serves traffic or hooks into the parent's lifecycle. */
export function withoutServing(container: V1Container): V1Container {
  const c = { ...container };
  delete c.ports;
  delete c.livenessProbe;
  delete c.readinessProbe;
  delete c.startupProbe;
  delete c.lifecycle;
  return c;
}

/**
 * `resourceFieldRef.containerName` naming the app container (`limits.memory` of "web") names
 * the runner container instead, in env and in downward-API volumes.
 */
export function followRenamedContainer<T>(value: T, from: string, to: string): T {
  if (from === to) return value;
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const item of node) visit(item);
      return;
    }
    if (typeof node !== 'object' || node === null) return;
    const record = node as Record<string, unknown>;
    const ref = record.resourceFieldRef as { containerName?: string } | undefined;
    if (ref && typeof ref === 'object' && ref.containerName === from) ref.containerName = to;
    for (const child of Object.values(record)) visit(child);
  };
  visit(value);
  return value;
}

/** Env entries whose resourceFieldRef names `from` now name `to` (a copy). */
export function followRenamedEnv(env: V1EnvVar[], from: string, to: string): V1EnvVar[] {
  return followRenamedContainer(structuredClone(env), from, to);
}

/** Volumes without the service-account token volume admission injects (`kube-api-access-*`, or whatever is mounted at the token path). */
function withoutInjectedVolumes(volumes: V1Volume[], containers: V1Container[]): V1Volume[] {
  const atTokenPath = new Set(
    containers.flatMap((c) => c.volumeMounts ?? []).filter((m) => m.mountPath.replace(/\/+$/, '') === SERVICE_ACCOUNT_MOUNT).map((m) => m.name),
  );
  return volumes.filter((v) => !atTokenPath.has(v.name) && !(v.name.startsWith('kube-api-access-') && v.projected?.sources?.some((s) => s.serviceAccountToken)));
}

function withMounts(container: V1Container, volumes: ReadonlySet<string>): V1Container {
  if (!container.volumeMounts) return container;
  const mounts: V1VolumeMount[] = container.volumeMounts.filter((m) => volumes.has(m.name));
  const c = { ...container };
  if (mounts.length > 0) c.volumeMounts = mounts;
  else delete c.volumeMounts;
  return c;
}
