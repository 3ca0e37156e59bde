/**
 * `rbac.authorization.k8s.io/v1`: Role, ClusterRole, RoleBinding, ClusterRoleBinding, validated
 * as the real registry does (rules need verbs and, for resources, API groups; a binding's
 * `roleRef` names a Role or ClusterRole and never changes). The authorizer (rbac.ts) reads them.
 */
import { ClusterRole as ClusterRoleModel } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding as ClusterRoleBindingModel } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { Role as RoleModel } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding as RoleBindingModel } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import type { StatusCause } from '../status.js';
import { ALL_VERBS, fieldsOf, invalidValue, notSupported, required, schemaCauses, type ModelClass, type ResourceDefinition } from '../strategy.js';
import type { KubeObject, StoredObject } from '../types.js';

export const RBAC_GROUP = 'rbac.authorization.k8s.io';

export interface PolicyRuleObject {
  verbs: string[];
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

export interface Subject {
  kind: 'User' | 'Group' | 'ServiceAccount';
  name: string;
  namespace?: string;
  apiGroup?: string;
}

export interface RoleRef {
  apiGroup: string;
  kind: 'Role' | 'ClusterRole';
  name: string;
}

/** RBAC names are path segments: anything but `/`, `%`, `.` and `..` (so `system:basic-user` is fine). */
function pathSegmentNameCauses(object: KubeObject): StatusCause[] {
  const name = object.metadata?.name ?? '';
  if (name === '.' || name === '..') return [invalidValue('metadata.name', name, `may not be '${name}'`)];
  for (const bad of ['/', '%']) if (name.includes(bad)) return [invalidValue('metadata.name', name, `may not contain '${bad}'`)];
  return [];
}

function ruleCauses(rules: unknown, namespaced: boolean): StatusCause[] {
  const causes: StatusCause[] = [];
  ((rules as PolicyRuleObject[] | undefined) ?? []).forEach((rule, i) => {
    const at = `rules[${i}]`;
    if ((rule.verbs ?? []).length === 0) causes.push(required(`${at}.verbs`, 'verbs must contain at least one value'));
    const nonResource = (rule.nonResourceURLs ?? []).length > 0;
    if (nonResource) {
      if (namespaced) causes.push(invalidValue(`${at}.nonResourceURLs`, rule.nonResourceURLs, 'namespaced rules cannot apply to non-resource URLs'));
      if ((rule.apiGroups ?? []).length > 0 || (rule.resources ?? []).length > 0) {
        causes.push(invalidValue(`${at}.nonResourceURLs`, rule.nonResourceURLs, 'rules cannot apply to both regular resources and non-resource URLs'));
      }
      return;
    }
    if ((rule.apiGroups ?? []).length === 0) causes.push(required(`${at}.apiGroups`, 'resource rules must supply at least one api group'));
    if ((rule.resources ?? []).length === 0) causes.push(required(`${at}.resources`, 'resource rules must supply at least one resource'));
  });
  return causes;
}

function roleValidator(Model: ModelClass, namespaced: boolean): (object: KubeObject) => StatusCause[] {
  return (object) => {
    const schema = schemaCauses(Model, object);
    if (schema.length > 0) return schema;
    return [...pathSegmentNameCauses(object), ...ruleCauses(object.rules, namespaced)];
  };
}

function bindingValidator(Model: ModelClass, kinds: string[], namespaced: boolean): (object: KubeObject) => StatusCause[] {
  return (object) => {
    const schema = schemaCauses(Model, object);
    if (schema.length > 0) return schema;
    const causes = pathSegmentNameCauses(object);
    const ref = object.roleRef as Partial<RoleRef> | undefined;
    if (ref?.apiGroup !== RBAC_GROUP) causes.push(notSupported('roleRef.apiGroup', ref?.apiGroup ?? '', [RBAC_GROUP]));
    if (!kinds.includes(ref?.kind ?? '')) causes.push(notSupported('roleRef.kind', ref?.kind ?? '', kinds));
    if (!ref?.name) causes.push(required('roleRef.name'));
    ((object.subjects as Partial<Subject>[] | undefined) ?? []).forEach((subject, i) => {
      const at = `subjects[${i}]`;
      if (!['User', 'Group', 'ServiceAccount'].includes(subject.kind ?? '')) {
        causes.push(notSupported(`${at}.kind`, subject.kind ?? '', ['ServiceAccount', 'User', 'Group']));
      }
      if (!subject.name) causes.push(required(`${at}.name`));
      if (subject.kind === 'ServiceAccount' && !namespaced && !subject.namespace) causes.push(required(`${at}.namespace`));
    });
    return causes;
  };
}

/** A binding's `roleRef` is immutable: the real message, so that `kubectl apply` users recognise it. */
function roleRefUnchanged(validate: (object: KubeObject) => StatusCause[]): (next: KubeObject, current: StoredObject) => StatusCause[] {
  return (next, current) => {
    const causes = validate(next);
    if (JSON.stringify(next.roleRef) !== JSON.stringify(current.roleRef)) {
      causes.push(invalidValue('roleRef', next.roleRef, 'cannot change roleRef'));
    }
    return causes;
  };
}

function rbacKind(kind: string, name: string, namespaced: boolean, validate: (object: KubeObject) => StatusCause[], immutableRef: boolean): ResourceDefinition {
  return {
    group: RBAC_GROUP,
    version: 'v1',
    name,
    singularName: kind.toLowerCase(),
    kind,
    namespaced,
    shortNames: [],
    verbs: ALL_VERBS,
    subresources: {},
    fields: fieldsOf(),
    validate,
    deleteReturnsStatus: true,
    ...(immutableRef ? { validateUpdate: roleRefUnchanged(validate) } : {}),
  };
}

export const ROLES = rbacKind('Role', 'roles', true, roleValidator(RoleModel, true), false);
export const CLUSTER_ROLES = rbacKind('ClusterRole', 'clusterroles', false, roleValidator(ClusterRoleModel, false), false);
export const ROLE_BINDINGS = rbacKind('RoleBinding', 'rolebindings', true, bindingValidator(RoleBindingModel, ['Role', 'ClusterRole'], true), true);
export const CLUSTER_ROLE_BINDINGS = rbacKind(
  'ClusterRoleBinding',
  'clusterrolebindings',
  false,
  bindingValidator(ClusterRoleBindingModel, ['ClusterRole'], false),
  true,
);
