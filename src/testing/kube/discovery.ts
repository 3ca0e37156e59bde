/**
 * Discovery documents (`/version`, `/api`, `/api/v1`, `/apis`, `/apis/GROUP[/VERSION]`): what
 * kubectl reads before anything else to learn which resources exist, in which group, with their
 * short names, categories and verbs. Built from the catalog in resources.ts.
 */
import { RESOURCES, servedGroups } from './resources.js';

export const EMULATED_KUBERNETES_VERSION = { major: '1', minor: '32', gitVersion: 'v1.32.0-flame-emulator' };

export function versionInfo(): Record<string, string> {
  return {
    ...EMULATED_KUBERNETES_VERSION,
    gitCommit: '0000000000000000000000000000000000000000',
    gitTreeState: 'clean',
    buildDate: '2025-01-01T00:00:00Z',
    goVersion: 'go1.23.4',
    compiler: 'gc',
    platform: `${process.platform}/${process.arch === 'x64' ? 'amd64' : process.arch}`,
  };
}

export function apiVersions(serverAddress: string): unknown {
  return {
    kind: 'APIVersions',
    versions: ['v1'],
    serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }],
  };
}

/** Subresources whose body is another kind than their parent's. */
const SUBRESOURCE_KINDS: Record<string, { group: string; version: string; kind: string }> = {
  scale: { group: 'autoscaling', version: 'v1', kind: 'Scale' },
  eviction: { group: 'policy', version: 'v1', kind: 'Eviction' },
  token: { group: 'authentication.k8s.io', version: 'v1', kind: 'TokenRequest' },
};

/** The APIResourceList of one group version, or undefined when it is not served. */
export function resourceList(group: string, version: string): unknown {
  const served = RESOURCES.filter((r) => r.group === group && r.version === version);
  if (served.length === 0) return undefined;
  const resources: unknown[] = [];
  for (const r of served) {
    const entry: Record<string, unknown> = { name: r.name, singularName: r.singularName, namespaced: r.namespaced, kind: r.kind, verbs: r.verbs };
    if (r.shortNames.length > 0) entry.shortNames = r.shortNames;
    if (r.categories) entry.categories = r.categories;
    resources.push(entry);
    for (const [sub, verbs] of Object.entries(r.subresources)) {
      resources.push({ name: `${r.name}/${sub}`, singularName: '', namespaced: r.namespaced, verbs, ...(SUBRESOURCE_KINDS[sub] ?? { kind: r.kind }) });
    }
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: group ? `${group}/${version}` : version, resources };
}

function groupEntry(group: string, version: string): Record<string, unknown> {
  const groupVersion = { groupVersion: `${group}/${version}`, version };
  return { name: group, versions: [groupVersion], preferredVersion: groupVersion };
}

export function apiGroupList(): unknown {
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: servedGroups().map((g) => groupEntry(g.group, g.version)) };
}

/** The APIGroup document of a served group, or undefined. */
export function apiGroup(group: string): unknown {
  const served = servedGroups().find((g) => g.group === group);
  return served ? { kind: 'APIGroup', apiVersion: 'v1', ...groupEntry(served.group, served.version) } : undefined;
}
