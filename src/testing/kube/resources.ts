/**
 * The catalog of served kinds: one definition (discovery entry, field selectors, strategy) per
 * kind, kept in `kinds/` and `pod-strategy.ts`. Adding a kind is adding it here.
 */
import { DEPLOYMENTS, REPLICA_SETS } from './kinds/apps.js';
import { CONFIG_MAPS, EVENTS, namespacesDefinition, NODES, RESOURCE_QUOTAS, SECRETS, SERVICE_ACCOUNTS } from './kinds/core.js';
import { NETWORK_POLICIES } from './kinds/networking.js';
import { POD_DISRUPTION_BUDGETS } from './kinds/policy.js';
import { CLUSTER_ROLE_BINDINGS, CLUSTER_ROLES, ROLE_BINDINGS, ROLES } from './kinds/rbac.js';
import { SELF_SUBJECT_ACCESS_REVIEWS, SELF_SUBJECT_REVIEWS, SELF_SUBJECT_RULES_REVIEWS } from './kinds/reviews.js';
import { PODS } from './pod-strategy.js';
import { apiVersionOf, type ResourceDefinition } from './strategy.js';

export type { ResourceDefinition } from './strategy.js';

export const RESOURCES: readonly ResourceDefinition[] = [
  PODS,
  SECRETS,
  CONFIG_MAPS,
  SERVICE_ACCOUNTS,
  EVENTS,
  RESOURCE_QUOTAS,
  namespacesDefinition(() => RESOURCES.filter((r) => r.namespaced && !r.virtual)),
  NODES,
  ROLES,
  ROLE_BINDINGS,
  CLUSTER_ROLES,
  CLUSTER_ROLE_BINDINGS,
  DEPLOYMENTS,
  REPLICA_SETS,
  NETWORK_POLICIES,
  POD_DISRUPTION_BUDGETS,
  SELF_SUBJECT_ACCESS_REVIEWS,
  SELF_SUBJECT_RULES_REVIEWS,
  SELF_SUBJECT_REVIEWS,
];

export function findResource(name: string): ResourceDefinition | undefined {
  return RESOURCES.find((r) => r.name === name);
}

/** The definition serving `name` in a group and version, as in a URL. */
export function findResourceIn(group: string, version: string, name: string): ResourceDefinition | undefined {
  return RESOURCES.find((r) => r.name === name && r.group === group && r.version === version);
}

/** The definition of an object's kind (owner references name `apiVersion` and `kind`). */
export function resourceOfKind(kind: string, apiVersion?: string): ResourceDefinition | undefined {
  return RESOURCES.find((r) => r.kind === kind && !r.virtual && (apiVersion === undefined || apiVersionOf(r) === apiVersion));
}

/** The API groups served besides the core group, with their versions, in discovery order. */
export function servedGroups(): { group: string; version: string }[] {
  const groups: { group: string; version: string }[] = [];
  for (const r of RESOURCES) {
    if (r.group && !groups.some((g) => g.group === r.group)) groups.push({ group: r.group, version: r.version });
  }
  return groups;
}
