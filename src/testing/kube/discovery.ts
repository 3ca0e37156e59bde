/**
 * Discovery documents (`/version`, `/api`, `/api/v1`, `/apis`): what kubectl reads before anything
 * else to learn which resources exist, their short names and verbs.
 */
import { RESOURCES } from './resources.js';

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

export function coreResourceList(): unknown {
  const resources: unknown[] = [];
  for (const r of RESOURCES) {
    const entry: Record<string, unknown> = {
      name: r.name,
      singularName: r.singularName,
      namespaced: r.namespaced,
      kind: r.kind,
      verbs: r.verbs,
    };
    if (r.shortNames.length > 0) entry.shortNames = r.shortNames;
    if (r.kind === 'Pod') entry.categories = ['all'];
    resources.push(entry);
    for (const [sub, verbs] of Object.entries(r.subresources)) {
      resources.push({ name: `${r.name}/${sub}`, singularName: '', namespaced: r.namespaced, kind: sub === 'log' ? r.kind : r.kind, verbs });
    }
  }
  return { kind: 'APIResourceList', groupVersion: 'v1', resources };
}

const AUTHORIZATION_GROUP = {
  name: 'authorization.k8s.io',
  versions: [{ groupVersion: 'authorization.k8s.io/v1', version: 'v1' }],
  preferredVersion: { groupVersion: 'authorization.k8s.io/v1', version: 'v1' },
};

export function apiGroupList(): unknown {
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: [AUTHORIZATION_GROUP] };
}

export function authorizationGroup(): unknown {
  return { kind: 'APIGroup', apiVersion: 'v1', ...AUTHORIZATION_GROUP };
}

export function authorizationResourceList(): unknown {
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: 'authorization.k8s.io/v1',
    resources: [
      { name: 'selfsubjectaccessreviews', singularName: 'selfsubjectaccessreview', namespaced: false, kind: 'SelfSubjectAccessReview', verbs: ['create'] },
    ],
  };
}
