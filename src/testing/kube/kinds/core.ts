/**
 * The core (`v1`) kinds other than pods: secrets, config maps, service accounts, events,
 * namespaces, nodes and resource quotas, each with the strategy of its real registry.
 */
import { ResourceQuota as ResourceQuotaModel } from 'kubernetes-models/v1/ResourceQuota';
import { ALL_VERBS, fieldsOf, labelNameCauses, nameCauses, nowSeconds, schemaAndName, type ResourceDefinition, type StrategyContext } from '../strategy.js';
import type { KubeObject, StoredObject } from '../types.js';
import { validateSecret } from './secret-validation.js';

/** The real server folds write-only `stringData` into base64 `data` and defaults the type. */
function normalizeSecret(secret: KubeObject): void {
  const stringData = secret.stringData as Record<string, string> | undefined;
  if (stringData && typeof stringData === 'object') {
    const data = { ...((secret.data as Record<string, string> | undefined) ?? {}) };
    for (const [key, value] of Object.entries(stringData)) data[key] = Buffer.from(String(value)).toString('base64');
    secret.data = data;
  }
  delete secret.stringData;
  secret.type ??= 'Opaque';
}

export const SECRETS: ResourceDefinition = {
  group: '',
  version: 'v1',
  name: 'secrets',
  singularName: 'secret',
  kind: 'Secret',
  deleteReturnsStatus: true,
  namespaced: true,
  shortNames: [],
  verbs: ALL_VERBS,
  subresources: {},
  fields: fieldsOf('type'),
  prepareForCreate: normalizeSecret,
  prepareForUpdate: normalizeSecret,
  validate: validateSecret,
};

export const CONFIG_MAPS: ResourceDefinition = {
  group: '',
  version: 'v1',
  name: 'configmaps',
  singularName: 'configmap',
  kind: 'ConfigMap',
  deleteReturnsStatus: true,
  namespaced: true,
  shortNames: ['cm'],
  verbs: ALL_VERBS,
  subresources: {},
  fields: fieldsOf(),
};

export const SERVICE_ACCOUNTS: ResourceDefinition = {
  group: '',
  version: 'v1',
  name: 'serviceaccounts',
  singularName: 'serviceaccount',
  kind: 'ServiceAccount',
  deleteReturnsStatus: true,
  namespaced: true,
  shortNames: ['sa'],
  verbs: ALL_VERBS,
  subresources: { token: ['create'] },
  fields: fieldsOf(),
};

export const EVENTS: ResourceDefinition = {
  group: '',
  version: 'v1',
  name: 'events',
  singularName: 'event',
  kind: 'Event',
  deleteReturnsStatus: true,
  namespaced: true,
  shortNames: ['ev'],
  verbs: ALL_VERBS,
  subresources: {},
  fields: {
    ...fieldsOf(
      'involvedObject.kind',
      'involvedObject.namespace',
      'involvedObject.name',
      'involvedObject.uid',
      'involvedObject.apiVersion',
      'involvedObject.resourceVersion',
      'involvedObject.fieldPath',
      'reason',
      'reportingComponent',
      'type',
    ),
    source: (o) => String((o.source as { component?: string } | undefined)?.component ?? ''),
  },
  // Event names carry a dot and hex clock (`pod.17a3...`): a subdomain, as the real check wants.
  validate: nameCauses,
};

/** Marks the namespace Terminating and deletes its content; it goes once empty (see the garbage collector). */
function beginNamespaceDeletion(namespace: StoredObject, ctx: StrategyContext, namespacedKinds: () => readonly ResourceDefinition[]): void {
  const name = namespace.metadata.name;
  ctx.mutate('namespaces', '', name, (draft) => {
    draft.metadata.deletionTimestamp ??= nowSeconds();
    draft.metadata.deletionGracePeriodSeconds = 0;
    draft.status = { phase: 'Terminating' };
    draft.metadata.finalizers = ['kubernetes'];
  });
  for (const definition of namespacedKinds()) {
    for (const item of ctx.items(definition.name, name)) {
      if (!item.metadata.deletionTimestamp) ctx.deleteQuietly(definition.name, name, item.metadata.name);
    }
  }
}

/** Namespaces need the list of namespaced kinds to empty themselves; the catalog hands it over. */
export function namespacesDefinition(namespacedKinds: () => readonly ResourceDefinition[]): ResourceDefinition {
  return {
    group: '',
    version: 'v1',
    name: 'namespaces',
    singularName: 'namespace',
    kind: 'Namespace',
    namespaced: false,
    shortNames: ['ns'],
    verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
    subresources: { status: ['get', 'patch', 'update'], finalize: ['update'] },
    fields: fieldsOf('status.phase'),
    prepareForCreate: (object) => {
      const metadata = object.metadata!;
      metadata.labels = { ...metadata.labels, 'kubernetes.io/metadata.name': metadata.name! };
      object.spec = { finalizers: ['kubernetes'] };
      object.status = { phase: 'Active' };
    },
    validate: labelNameCauses,
    prepareForUpdate: (next, current) => {
      next.metadata!.labels = { ...next.metadata!.labels, 'kubernetes.io/metadata.name': current.metadata.name };
      next.spec = structuredClone(current.spec);
    },
    beginDelete: (object, ctx) => beginNamespaceDeletion(object, ctx, namespacedKinds),
  };
}

export const NODES: ResourceDefinition = {
  group: '',
  version: 'v1',
  name: 'nodes',
  singularName: 'node',
  kind: 'Node',
  namespaced: false,
  shortNames: ['no'],
  verbs: ['get', 'list', 'patch', 'update', 'watch'],
  subresources: { status: ['get', 'patch', 'update'] },
  fields: fieldsOf('spec.unschedulable'),
};

export const RESOURCE_QUOTAS: ResourceDefinition = {
  group: '',
  version: 'v1',
  name: 'resourcequotas',
  singularName: 'resourcequota',
  kind: 'ResourceQuota',
  deleteReturnsStatus: true,
  namespaced: true,
  shortNames: ['quota'],
  verbs: ALL_VERBS,
  subresources: { status: ['get', 'patch', 'update'] },
  fields: fieldsOf(),
  validate: schemaAndName(ResourceQuotaModel),
};
