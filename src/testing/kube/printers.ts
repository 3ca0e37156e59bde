/**
 * The server-side printers of kube-apiserver (pkg/printers/internalversion), one per resource:
 * the columns `kubectl get` shows and how each row is filled. The server always sends the wide
 * cells (priority-1 columns are what `-o wide` adds). Keyed by resource name, so a kind's strategy
 * can name its printer: `PRINTERS.deployments`.
 */
import { selectorString, type LabelSelectorObject } from './selectors.js';
import type { KubeObject, StoredObject } from './types.js';

export interface ColumnDefinition {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
}

export interface Printer {
  columns: ColumnDefinition[];
  cells(object: StoredObject): unknown[];
}

export function column(name: string, description: string, priority = 0, type = 'string', format = ''): ColumnDefinition {
  return { name, type, format, description, priority };
}

export const NAME_COLUMN = column('Name', 'Name must be unique within a namespace.', 0, 'string', 'name');
export const AGE_COLUMN = column('Age', 'CreationTimestamp is a timestamp representing the server time when this object was created.');

/** Kubernetes' short human durations: 45s, 3m12s, 5h, 2d3h... */
export function humanDuration(ms: number): string {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`;
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
  if (hours < 48) return `${hours}h`;
  const days = Math.floor(hours / 24);
  if (days < 8) return hours % 24 === 0 ? `${days}d` : `${days}d${hours % 24}h`;
  return `${days}d`;
}

/** `translateTimestampSince`: "<unknown>" for a missing time. */
export function since(timestamp: string | undefined | null): string {
  const time = timestamp ? Date.parse(timestamp) : NaN;
  return Number.isNaN(time) ? '<unknown>' : humanDuration(Date.now() - time);
}

export function age(object: StoredObject): string {
  return since(object.metadata.creationTimestamp);
}

function read<T>(object: KubeObject, path: string): T | undefined {
  let value: unknown = object;
  for (const part of path.split('.')) value = (value as Record<string, unknown> | undefined)?.[part];
  return value as T | undefined;
}

export const DEFAULT_PRINTER: Printer = { columns: [NAME_COLUMN, AGE_COLUMN], cells: (o) => [o.metadata.name, age(o)] };

const namespaces: Printer = {
  columns: [NAME_COLUMN, column('Status', 'The status of the namespace'), AGE_COLUMN],
  cells: (o) => [o.metadata.name, read<string>(o, 'status.phase') ?? '', age(o)],
};

const serviceAccounts: Printer = {
  columns: [NAME_COLUMN, column('Secrets', 'Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use.'), AGE_COLUMN],
  cells: (o) => [o.metadata.name, (read<unknown[]>(o, 'secrets') ?? []).length, age(o)],
};

const secrets: Printer = {
  columns: [NAME_COLUMN, column('Type', 'The type of the secret'), column('Data', 'The number of entries in the secret'), AGE_COLUMN],
  cells: (o) => [o.metadata.name, read<string>(o, 'type') ?? '', Object.keys(read<object>(o, 'data') ?? {}).length, age(o)],
};

const configMaps: Printer = {
  columns: [NAME_COLUMN, column('Data', 'The number of entries in the config map'), AGE_COLUMN],
  cells: (o) => [o.metadata.name, Object.keys(read<object>(o, 'data') ?? {}).length + Object.keys(read<object>(o, 'binaryData') ?? {}).length, age(o)],
};

interface NodeStatus {
  conditions?: { type: string; status: string }[];
  addresses?: { type: string; address: string }[];
  nodeInfo?: { kubeletVersion?: string; osImage?: string; kernelVersion?: string; containerRuntimeVersion?: string };
}

function nodeStatusWord(o: StoredObject): string {
  const ready = (read<NodeStatus>(o, 'status')?.conditions ?? []).find((c) => c.type === 'Ready');
  const words = [ready === undefined ? 'Unknown' : ready.status === 'True' ? 'Ready' : 'NotReady'];
  if (read<boolean>(o, 'spec.unschedulable')) words.push('SchedulingDisabled');
  return words.join(',');
}

function nodeRoles(o: StoredObject): string {
  const roles = new Set<string>();
  for (const [key, value] of Object.entries(o.metadata.labels ?? {})) {
    if (key.startsWith('node-role.kubernetes.io/')) roles.add(key.slice('node-role.kubernetes.io/'.length));
    else if (key === 'kubernetes.io/role' && value) roles.add(value);
  }
  return roles.size > 0 ? [...roles].sort().join(',') : '<none>';
}

const nodes: Printer = {
  columns: [
    NAME_COLUMN,
    column('Status', 'The status of the node'),
    column('Roles', 'The roles of the node'),
    AGE_COLUMN,
    column('Version', 'Kubelet Version reported by the node.'),
    column('Internal-IP', 'List of addresses reachable to the node. Queried from cloud provider, if available.', 1),
    column('External-IP', 'List of addresses reachable to the node. Queried from cloud provider, if available.', 1),
    column('OS-Image', 'OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).', 1),
    column('Kernel-Version', "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).", 1),
    column('Container-Runtime', 'ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).', 1),
  ],
  cells: (o) => {
    const status = read<NodeStatus>(o, 'status') ?? {};
    const address = (type: string) => status.addresses?.find((a) => a.type === type)?.address ?? '<none>';
    const info = status.nodeInfo ?? {};
    return [
      o.metadata.name,
      nodeStatusWord(o),
      nodeRoles(o),
      age(o),
      info.kubeletVersion ?? '',
      address('InternalIP'),
      address('ExternalIP'),
      info.osImage || '<unknown>',
      info.kernelVersion || '<unknown>',
      info.containerRuntimeVersion || '<unknown>',
    ];
  },
};

interface EventFields {
  type?: string;
  reason?: string;
  message?: string;
  count?: number;
  firstTimestamp?: string | null;
  lastTimestamp?: string | null;
  eventTime?: string | null;
  series?: { count?: number; lastObservedTime?: string };
  involvedObject?: { kind?: string; name?: string; fieldPath?: string };
  source?: { component?: string; host?: string };
  reportingComponent?: string;
  reportingInstance?: string;
}

const events: Printer = {
  columns: [
    column('Last Seen', 'The time at which the most recent occurrence of this event was recorded.'),
    column('Type', 'Type of this event (Normal, Warning), new types could be added in the future'),
    column('Reason', "This should be a short, machine understandable string that gives the reason for the transition into the object's current status."),
    column('Object', 'The object that this event is about.'),
    column('Subobject', 'If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go-field access statement.', 1),
    column('Source', 'The component reporting this event. Should be a short machine understandable string.', 1),
    column('Message', 'A human-readable description of the status of this operation.'),
    column('First Seen', 'The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)', 1),
    column('Count', 'The number of times this event has occurred.', 1),
    column('Name', 'Name must be unique within a namespace.', 1, 'string', 'name'),
  ],
  cells: (o) => {
    const e = o as StoredObject & EventFields;
    const first = e.firstTimestamp ? since(e.firstTimestamp) : since(e.eventTime);
    let last = e.lastTimestamp ? since(e.lastTimestamp) : first;
    let count = e.count ?? 0;
    if (e.series) {
      last = since(e.series.lastObservedTime);
      count = e.series.count ?? 0;
    } else if (count === 0) count = 1;
    const kind = (e.involvedObject?.kind ?? '').toLowerCase();
    const target = e.involvedObject?.name ? `${kind}/${e.involvedObject.name}` : kind;
    const component = e.source?.component || e.reportingComponent || '';
    const host = e.source?.host || e.reportingInstance || '';
    const source = component === '' ? '' : host ? `${component}, ${host}` : component;
    return [last, e.type ?? '', e.reason ?? '', target, e.involvedObject?.fieldPath ?? '', source, (e.message ?? '').trim(), first, count, o.metadata.name];
  },
};

interface Workload {
  spec?: { replicas?: number; selector?: LabelSelectorObject; template?: { spec?: { containers?: { name: string; image?: string }[] } } };
  status?: { replicas?: number; readyReplicas?: number; updatedReplicas?: number; availableReplicas?: number };
}

const CONTAINERS_COLUMN = column('Containers', 'Names of each container in the template.', 1);
const IMAGES_COLUMN = column('Images', 'Images referenced by each container in the template.', 1);
const SELECTOR_COLUMN = column('Selector', 'Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.', 1);

function workloadWideCells(o: StoredObject): unknown[] {
  const w = o as StoredObject & Workload;
  const containers = w.spec?.template?.spec?.containers ?? [];
  const selector = w.spec?.selector ? selectorString(w.spec.selector) : '';
  return [containers.map((c) => c.name).join(','), containers.map((c) => c.image ?? '').join(','), selector || '<none>'];
}

const deployments: Printer = {
  columns: [
    NAME_COLUMN,
    column('Ready', 'Number of the pod with ready state'),
    column('Up-to-date', 'Total number of non-terminated pods targeted by this deployment that have the desired template spec.'),
    column('Available', 'Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.'),
    AGE_COLUMN,
    CONTAINERS_COLUMN,
    IMAGES_COLUMN,
    SELECTOR_COLUMN,
  ],
  cells: (o) => {
    const w = o as StoredObject & Workload;
    const status = w.status ?? {};
    return [o.metadata.name, `${status.readyReplicas ?? 0}/${w.spec?.replicas ?? 0}`, status.updatedReplicas ?? 0, status.availableReplicas ?? 0, age(o), ...workloadWideCells(o)];
  },
};

const replicaSets: Printer = {
  columns: [
    NAME_COLUMN,
    column('Desired', 'Number of desired pods. This is a pointer to distinguish between explicit zero and unspecified.', 0, 'integer'),
    column('Current', 'Replicas is the most recently observed number of replicas.', 0, 'integer'),
    column('Ready', 'The number of ready replicas for this replica set.', 0, 'integer'),
    AGE_COLUMN,
    CONTAINERS_COLUMN,
    IMAGES_COLUMN,
    column('Selector', 'Selector is a label query over pods that should match the replica count.', 1),
  ],
  cells: (o) => {
    const w = o as StoredObject & Workload;
    return [o.metadata.name, w.spec?.replicas ?? 0, w.status?.replicas ?? 0, w.status?.readyReplicas ?? 0, age(o), ...workloadWideCells(o)];
  },
};

/** The printers by resource name; a resource without one prints NAME and AGE. */
export const PRINTERS: Readonly<Record<string, Printer>> = {
  namespaces,
  serviceaccounts: serviceAccounts,
  secrets,
  configmaps: configMaps,
  nodes,
  events,
  deployments,
  replicasets: replicaSets,
};
