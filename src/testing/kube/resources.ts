/**
 * The resources the emulated cluster serves, with what discovery says about them and the fields a
 * field selector may use on each (the real server refuses any other field).
 */
import type { KubeObject, Pod, Verb } from './types.js';

export interface ResourceDefinition {
  /** Plural name as in URLs and RBAC rules ("pods"). */
  name: string;
  singularName: string;
  kind: string;
  namespaced: boolean;
  shortNames: string[];
  verbs: Verb[];
  /** Subresources served, with their verbs (for discovery and RBAC). */
  subresources: Record<string, Verb[]>;
  /** Field-selector labels and how to read each from an object. */
  fields: Record<string, (object: KubeObject) => string>;
}

const ALL_VERBS: Verb[] = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

function at(object: KubeObject, path: string): string {
  let value: unknown = object;
  for (const part of path.split('.')) value = (value as Record<string, unknown> | undefined)?.[part];
  return value === undefined || value === null ? '' : String(value);
}

function fieldsOf(...paths: string[]): Record<string, (object: KubeObject) => string> {
  const fields: Record<string, (object: KubeObject) => string> = {
    'metadata.name': (o) => at(o, 'metadata.name'),
    'metadata.namespace': (o) => at(o, 'metadata.namespace'),
  };
  for (const path of paths) fields[path] = (o) => at(o, path);
  return fields;
}

export const RESOURCES: readonly ResourceDefinition[] = [
  {
    name: 'pods',
    singularName: 'pod',
    kind: 'Pod',
    namespaced: true,
    shortNames: ['po'],
    verbs: ALL_VERBS,
    subresources: { status: ['get', 'patch', 'update'], log: ['get'] },
    fields: {
      ...fieldsOf('spec.nodeName', 'spec.restartPolicy', 'spec.schedulerName', 'spec.serviceAccountName', 'status.phase', 'status.podIP', 'status.nominatedNodeName'),
      'spec.hostNetwork': (o) => String((o as Pod).spec?.hostNetwork ?? false),
    },
  },
  {
    name: 'secrets',
    singularName: 'secret',
    kind: 'Secret',
    namespaced: true,
    shortNames: [],
    verbs: ALL_VERBS,
    subresources: {},
    fields: fieldsOf('type'),
  },
  {
    name: 'configmaps',
    singularName: 'configmap',
    kind: 'ConfigMap',
    namespaced: true,
    shortNames: ['cm'],
    verbs: ALL_VERBS,
    subresources: {},
    fields: fieldsOf(),
  },
  {
    name: 'serviceaccounts',
    singularName: 'serviceaccount',
    kind: 'ServiceAccount',
    namespaced: true,
    shortNames: ['sa'],
    verbs: ALL_VERBS,
    subresources: {},
    fields: fieldsOf(),
  },
  {
    name: 'events',
    singularName: 'event',
    kind: 'Event',
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
      source: (o) => at(o, 'source.component'),
    },
  },
  {
    name: 'namespaces',
    singularName: 'namespace',
    kind: 'Namespace',
    namespaced: false,
    shortNames: ['ns'],
    verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
    subresources: { status: ['get', 'patch', 'update'] },
    fields: fieldsOf('status.phase'),
  },
  {
    name: 'nodes',
    singularName: 'node',
    kind: 'Node',
    namespaced: false,
    shortNames: ['no'],
    verbs: ['get', 'list', 'watch'],
    subresources: {},
    fields: fieldsOf('spec.unschedulable'),
  },
];

export function findResource(name: string): ResourceDefinition | undefined {
  return RESOURCES.find((r) => r.name === name);
}

export function resourceOfKind(kind: string): ResourceDefinition | undefined {
  return RESOURCES.find((r) => r.kind === kind);
}
