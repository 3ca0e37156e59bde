/**
 * Pod Security admission, as kube-apiserver's PodSecurity plugin enforces the Pod Security
 * Standards from a namespace's `pod-security.kubernetes.io/enforce` label (`privileged`,
 * `baseline`, `restricted`; version `latest`). Checks run in the real plugin's order (by check
 * id) and a refusal carries its exact words:
 *   pods "x" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (...), ...
 * Pods created by controllers meet the same check (the ReplicaSet reports FailedCreate).
 */
import type { AdmissionPlugin } from './admission.js';
import { apiErrors } from './status.js';
import type { Container, Pod } from './types.js';

type Level = 'privileged' | 'baseline' | 'restricted';
type Spec = NonNullable<Pod['spec']>;

interface Check {
  id: string;
  level: Exclude<Level, 'privileged'>;
  /** The forbidden reason and detail, or undefined when the pod passes. */
  run(spec: Spec): [string, string] | undefined;
}

function containersOf(spec: Spec): Container[] {
  return [...(spec.initContainers ?? []), ...spec.containers];
}

function pluralize(names: string[]): string {
  return `${names.length === 1 ? 'container' : 'containers'} ${joinQuote(names)}`;
}

function joinQuote(values: (string | number)[]): string {
  return values.map((v) => JSON.stringify(String(v))).join(', ');
}

const BASELINE_CAPABILITIES = ['AUDIT_WRITE', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'MKNOD', 'NET_BIND_SERVICE', 'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT'];
const RESTRICTED_VOLUMES = ['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret'];

const CHECKS: Check[] = [
  {
    id: 'allowPrivilegeEscalation',
    level: 'restricted',
    run(spec) {
      const bad = containersOf(spec).filter((c) => c.securityContext?.allowPrivilegeEscalation !== false).map((c) => c.name);
      return bad.length ? ['allowPrivilegeEscalation != false', `${pluralize(bad)} must set securityContext.allowPrivilegeEscalation=false`] : undefined;
    },
  },
  {
    id: 'capabilities_baseline',
    level: 'baseline',
    run(spec) {
      const bad: string[] = [];
      const caps = new Set<string>();
      for (const c of containersOf(spec)) {
        const added = (c.securityContext?.capabilities?.add ?? []).filter((a) => !BASELINE_CAPABILITIES.includes(a));
        if (added.length) bad.push(c.name);
        for (const a of added) caps.add(a);
      }
      return bad.length ? ['non-default capabilities', `${pluralize(bad)} must not include ${joinQuote([...caps].sort())} in securityContext.capabilities.add`] : undefined;
    },
  },
  {
    id: 'capabilities_restricted',
    level: 'restricted',
    run(spec) {
      const missingDrop: string[] = [];
      const adding: string[] = [];
      const caps = new Set<string>();
      for (const c of containersOf(spec)) {
        const capabilities = c.securityContext?.capabilities;
        if (!(capabilities?.drop ?? []).includes('ALL')) missingDrop.push(c.name);
        const added = (capabilities?.add ?? []).filter((a) => a !== 'NET_BIND_SERVICE');
        if (added.length) adding.push(c.name);
        for (const a of added) caps.add(a);
      }
      const details: string[] = [];
      if (missingDrop.length) details.push(`${pluralize(missingDrop)} must set securityContext.capabilities.drop=["ALL"]`);
      if (adding.length) details.push(`${pluralize(adding)} must not include ${joinQuote([...caps].sort())} in securityContext.capabilities.add`);
      return details.length ? ['unrestricted capabilities', details.join('; ')] : undefined;
    },
  },
  {
    id: 'hostNamespaces',
    level: 'baseline',
    run(spec) {
      const set = (['hostNetwork', 'hostPID', 'hostIPC'] as const).filter((f) => spec[f] === true).map((f) => `${f}=true`);
      return set.length ? ['host namespaces', set.join(', ')] : undefined;
    },
  },
  {
    id: 'hostPathVolumes',
    level: 'baseline',
    run(spec) {
      const bad = (spec.volumes ?? []).filter((v) => v.hostPath !== undefined).map((v) => v.name);
      return bad.length ? ['hostPath volumes', `${bad.length === 1 ? 'volume' : 'volumes'} ${joinQuote(bad)}`] : undefined;
    },
  },
  {
    id: 'hostPorts',
    level: 'baseline',
    run(spec) {
      const bad: string[] = [];
      const ports = new Set<number>();
      for (const c of containersOf(spec)) {
        const used = (c.ports ?? []).filter((p) => (p.hostPort ?? 0) !== 0).map((p) => p.hostPort!);
        if (used.length) bad.push(c.name);
        for (const p of used) ports.add(p);
      }
      return bad.length ? ['hostPort', `${pluralize(bad)} ${ports.size === 1 ? 'uses hostPort' : 'use hostPorts'} ${[...ports].join(', ')}`] : undefined;
    },
  },
  {
    id: 'privileged',
    level: 'baseline',
    run(spec) {
      const bad = containersOf(spec).filter((c) => c.securityContext?.privileged === true).map((c) => c.name);
      return bad.length ? ['privileged', `${pluralize(bad)} must not set securityContext.privileged=true`] : undefined;
    },
  },
  {
    id: 'restrictedVolumes',
    level: 'restricted',
    run(spec) {
      const bad = (spec.volumes ?? [])
        .map((v) => ({ name: v.name, type: Object.keys(v).find((k) => k !== 'name') ?? '' }))
        .filter((v) => !RESTRICTED_VOLUMES.includes(v.type));
      if (!bad.length) return undefined;
      const types = [...new Set(bad.map((v) => v.type))];
      return [
        'restricted volume types',
        `${bad.length === 1 ? 'volume' : 'volumes'} ${joinQuote(bad.map((v) => v.name))} ${bad.length === 1 ? 'uses' : 'use'} restricted volume ${types.length === 1 ? 'type' : 'types'} ${joinQuote(types)}`,
      ];
    },
  },
  {
    id: 'runAsNonRoot',
    level: 'restricted',
    run(spec) {
      const podValue = spec.securityContext?.runAsNonRoot;
      const setters: string[] = podValue === false ? ['pod'] : [];
      const explicit = containersOf(spec).filter((c) => c.securityContext?.runAsNonRoot === false).map((c) => c.name);
      if (explicit.length) setters.push(pluralize(explicit));
      if (setters.length) return ['runAsNonRoot != true', `${setters.join(' and ')} must not set securityContext.runAsNonRoot=false`];
      const implicit = containersOf(spec).filter((c) => c.securityContext?.runAsNonRoot === undefined && podValue !== true).map((c) => c.name);
      return implicit.length ? ['runAsNonRoot != true', `pod or ${pluralize(implicit)} must set securityContext.runAsNonRoot=true`] : undefined;
    },
  },
  {
    id: 'runAsUser',
    level: 'restricted',
    run(spec) {
      const setters: string[] = spec.securityContext?.runAsUser === 0 ? ['pod'] : [];
      const bad = containersOf(spec).filter((c) => c.securityContext?.runAsUser === 0).map((c) => c.name);
      if (bad.length) setters.push(pluralize(bad));
      return setters.length ? ['runAsUser=0', `${setters.join(' and ')} must not set runAsUser=0`] : undefined;
    },
  },
  {
    id: 'seccompProfile_restricted',
    level: 'restricted',
    run(spec) {
      const valid = (type: string | undefined): boolean => type === 'RuntimeDefault' || type === 'Localhost';
      const podProfile = spec.securityContext?.seccompProfile;
      const setters: string[] = [];
      const badValues = new Set<string>();
      if (podProfile && !valid(podProfile.type)) {
        setters.push('pod');
        badValues.add(podProfile.type);
      }
      const explicit: string[] = [];
      const implicit: string[] = [];
      for (const c of containersOf(spec)) {
        const profile = c.securityContext?.seccompProfile;
        if (profile) {
          if (!valid(profile.type)) {
            explicit.push(c.name);
            badValues.add(profile.type);
          }
        } else if (!(podProfile && valid(podProfile.type))) implicit.push(c.name);
      }
      if (explicit.length) setters.push(pluralize(explicit));
      if (setters.length) return ['seccompProfile', `${setters.join(' and ')} must not set securityContext.seccompProfile.type to ${joinQuote([...badValues].sort())}`];
      return implicit.length ? ['seccompProfile', `pod or ${pluralize(implicit)} must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"`] : undefined;
    },
  },
];

function levelOf(labels: Record<string, string> | undefined): Level {
  const value = labels?.['pod-security.kubernetes.io/enforce'];
  return value === 'baseline' || value === 'restricted' ? value : 'privileged';
}

/** The violations of a pod spec at a level, as `reason (detail)` strings in the real order. */
export function podSecurityViolations(spec: Spec, level: Level): string[] {
  if (level === 'privileged') return [];
  const applicable = CHECKS.filter((c) => c.level === 'baseline' || level === 'restricted');
  const violations: string[] = [];
  for (const check of applicable) {
    const result = check.run(spec);
    if (result) violations.push(`${result[0]} (${result[1]})`);
  }
  return violations;
}

export const podSecurityAdmission: AdmissionPlugin = {
  name: 'PodSecurity',
  validate(request, ctx) {
    if (request.definition.name !== 'pods') return;
    const namespace = ctx.find('namespaces', '', request.namespace);
    const labels = namespace?.metadata.labels;
    const level = levelOf(labels);
    const spec = (request.object as Pod).spec;
    if (!spec) return;
    const violations = podSecurityViolations(spec, level);
    if (violations.length === 0) return;
    const version = labels?.['pod-security.kubernetes.io/enforce-version'] ?? 'latest';
    throw apiErrors.forbidden('pods', request.object.metadata?.name, `violates PodSecurity "${level}:${version}": ${violations.join(', ')}`);
  },
};
