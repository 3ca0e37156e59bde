/**
 * The cluster roles and bindings a new cluster starts with (kube-apiserver's bootstrap policy,
 * reduced to what people use): `cluster-admin` for `system:masters`, the user-facing `admin`,
 * `edit` and `view` (for `kubectl create rolebinding --clusterrole=view`), and
 * `system:basic-user`, which lets every authenticated user ask what it may do (`kubectl auth can-i`).
 */
import { RBAC_GROUP, type PolicyRuleObject } from './kinds/rbac.js';
import type { PolicyRule } from './rbac.js';
import type { StrategyContext } from './strategy.js';
import type { KubeObject } from './types.js';

const READ = ['get', 'list', 'watch'];
const WRITE = ['create', 'delete', 'deletecollection', 'patch', 'update'];

const WORKLOADS: PolicyRuleObject[] = [
  { apiGroups: [''], resources: ['pods', 'pods/log', 'pods/status', 'configmaps', 'serviceaccounts', 'events', 'resourcequotas'], verbs: READ },
  { apiGroups: ['apps'], resources: ['deployments', 'deployments/scale', 'deployments/status', 'replicasets', 'replicasets/scale', 'replicasets/status'], verbs: READ },
  { apiGroups: ['networking.k8s.io'], resources: ['networkpolicies'], verbs: READ },
  { apiGroups: ['policy'], resources: ['poddisruptionbudgets', 'poddisruptionbudgets/status'], verbs: READ },
  { apiGroups: [''], resources: ['namespaces'], verbs: READ },
];

const EDITS: PolicyRuleObject[] = [
  { apiGroups: [''], resources: ['pods', 'configmaps', 'secrets', 'serviceaccounts'], verbs: [...READ, ...WRITE] },
  { apiGroups: [''], resources: ['pods/eviction', 'serviceaccounts/token'], verbs: ['create'] },
  { apiGroups: ['apps'], resources: ['deployments', 'deployments/scale', 'replicasets', 'replicasets/scale'], verbs: [...READ, ...WRITE] },
  { apiGroups: ['networking.k8s.io'], resources: ['networkpolicies'], verbs: [...READ, ...WRITE] },
  { apiGroups: ['policy'], resources: ['poddisruptionbudgets'], verbs: [...READ, ...WRITE] },
];

function clusterRole(name: string, rules: PolicyRuleObject[]): KubeObject {
  return {
    apiVersion: `${RBAC_GROUP}/v1`,
    kind: 'ClusterRole',
    metadata: { name, labels: { 'kubernetes.io/bootstrapping': 'rbac-defaults' }, annotations: { 'rbac.authorization.kubernetes.io/autoupdate': 'true' } },
    rules,
  };
}

function groupBinding(name: string, role: string, group: string): KubeObject {
  return {
    apiVersion: `${RBAC_GROUP}/v1`,
    kind: 'ClusterRoleBinding',
    metadata: { name, labels: { 'kubernetes.io/bootstrapping': 'rbac-defaults' }, annotations: { 'rbac.authorization.kubernetes.io/autoupdate': 'true' } },
    roleRef: { apiGroup: RBAC_GROUP, kind: 'ClusterRole', name: role },
    subjects: [{ apiGroup: RBAC_GROUP, kind: 'Group', name: group }],
  };
}

export function bootstrapClusterRoles(): KubeObject[] {
  return [
    clusterRole('cluster-admin', [
      { apiGroups: ['*'], resources: ['*'], verbs: ['*'] },
      { nonResourceURLs: ['*'], verbs: ['*'] },
    ]),
    clusterRole('admin', [
      ...WORKLOADS,
      ...EDITS,
      { apiGroups: [RBAC_GROUP], resources: ['roles', 'rolebindings'], verbs: [...READ, ...WRITE] },
      { apiGroups: [''], resources: ['secrets'], verbs: READ },
    ]),
    clusterRole('edit', [...WORKLOADS, ...EDITS, { apiGroups: [''], resources: ['secrets'], verbs: READ }]),
    clusterRole('view', WORKLOADS),
    clusterRole('system:basic-user', [
      { apiGroups: ['authorization.k8s.io'], resources: ['selfsubjectaccessreviews', 'selfsubjectrulesreviews'], verbs: ['create'] },
      { apiGroups: ['authentication.k8s.io'], resources: ['selfsubjectreviews'], verbs: ['create'] },
    ]),
  ];
}

export function bootstrapClusterRoleBindings(): KubeObject[] {
  return [groupBinding('cluster-admin', 'cluster-admin', 'system:masters'), groupBinding('system:basic-user', 'system:basic-user', 'system:authenticated')];
}

/**
 * The test helpers' grants, as stored objects: a Role and RoleBinding `NAME:grant-N` in
 * `inNamespace`, or (undefined) a ClusterRole and ClusterRoleBinding `NAMESPACE:NAME:grant-N`.
 */
export function grantRules(
  cluster: Pick<StrategyContext, 'create' | 'items'>,
  accountNamespace: string,
  account: string,
  rules: PolicyRule[],
  inNamespace: string | undefined,
): void {
  const [roles, bindings, roleKind] = inNamespace === undefined ? ['clusterroles', 'clusterrolebindings', 'ClusterRole'] : ['roles', 'rolebindings', 'Role'];
  const prefix = inNamespace === undefined ? `${accountNamespace}:${account}:grant-` : `${account}:grant-`;
  const taken = new Set(cluster.items(roles, inNamespace ?? '').map((r) => r.metadata.name));
  let n = 1;
  while (taken.has(`${prefix}${n}`)) n += 1;
  const name = `${prefix}${n}`;
  const namespace = inNamespace ?? '';
  cluster.create(roles, namespace, {
    metadata: { name },
    rules: rules.map((rule) => ({ ...structuredClone(rule), apiGroups: rule.apiGroups ?? [''] })),
  });
  cluster.create(bindings, namespace, {
    metadata: { name },
    roleRef: { apiGroup: RBAC_GROUP, kind: roleKind, name },
    subjects: [{ kind: 'ServiceAccount', name: account, namespace: accountNamespace }],
  });
}
