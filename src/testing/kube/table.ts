/**
 * Server-side printing (`meta.k8s.io/v1` Table), which `kubectl get` asks for: the columns and
 * status words people know from `kubectl get pods` (READY, STATUS, RESTARTS, AGE).
 */
import type { ContainerStatus, Pod, StoredObject } from './types.js';

interface ColumnDefinition {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
}

export interface Table {
  kind: 'Table';
  apiVersion: 'meta.k8s.io/v1';
  metadata: { resourceVersion?: string; continue?: string; remainingItemCount?: number };
  columnDefinitions: ColumnDefinition[];
  rows: { cells: unknown[]; object: unknown }[];
}

const NAME_COLUMN: ColumnDefinition = {
  name: 'Name',
  type: 'string',
  format: 'name',
  description: 'Name must be unique within a namespace.',
  priority: 0,
};
const AGE_COLUMN: ColumnDefinition = {
  name: 'Age',
  type: 'string',
  format: '',
  description: 'CreationTimestamp is a timestamp representing the server time when this object was created.',
  priority: 0,
};

function column(name: string, priority = 0, type = 'string'): ColumnDefinition {
  return { name, type, format: '', description: name, priority };
}

const POD_COLUMNS = [
  NAME_COLUMN,
  column('Ready'),
  column('Status'),
  column('Restarts'),
  AGE_COLUMN,
  column('IP', 1),
  column('Node', 1),
  column('Nominated Node', 1),
  column('Readiness Gates', 1),
];

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

function age(object: StoredObject): string {
  return humanDuration(Date.now() - Date.parse(object.metadata.creationTimestamp));
}

/** The STATUS word `kubectl get pods` shows, computed as kubectl's printer does. */
export function podStatusWord(pod: Pod): string {
  let reason = pod.status?.reason ?? pod.status?.phase ?? 'Unknown';
  const statuses: ContainerStatus[] = pod.status?.containerStatuses ?? [];
  let running = false;
  for (const status of [...statuses].reverse()) {
    if (status.state?.waiting?.reason) reason = status.state.waiting.reason;
    else if (status.state?.terminated) {
      const t = status.state.terminated;
      reason = t.reason ?? (t.signal ? `Signal:${t.signal}` : `ExitCode:${t.exitCode}`);
    } else if (status.ready && status.state?.running) running = true;
  }
  if (reason === 'Completed' && running) reason = 'Running';
  if (pod.metadata?.deletionTimestamp) reason = pod.status?.reason === 'NodeLost' ? 'Unknown' : 'Terminating';
  return reason;
}

function podCells(pod: Pod & StoredObject): unknown[] {
  const statuses = pod.status?.containerStatuses ?? [];
  const ready = statuses.filter((s) => s.ready).length;
  const restarts = statuses.reduce((sum, s) => sum + (s.restartCount ?? 0), 0);
  // "2 (5m ago)": the count, and how long since the latest restart (the newest lastState finish).
  const lastRestart = Math.max(0, ...statuses.map((s) => Date.parse(s.lastState?.terminated?.finishedAt ?? '') || 0));
  const restartsCell = restarts !== 0 && lastRestart > 0 ? `${restarts} (${humanDuration(Date.now() - lastRestart)} ago)` : String(restarts);
  return [
    pod.metadata.name,
    `${ready}/${pod.spec?.containers.length ?? 0}`,
    podStatusWord(pod),
    restartsCell,
    age(pod),
    pod.status?.podIP ?? '<none>',
    pod.spec?.nodeName ?? '<none>',
    '<none>',
    '<none>',
  ];
}

function partialMetadata(object: StoredObject): unknown {
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: object.metadata };
}

export function toTable(
  objects: StoredObject[],
  metadata: Table['metadata'],
  options: { withColumns: boolean; includeObject: string | undefined },
): Table {
  const isPods = objects.length > 0 ? objects[0]!.kind === 'Pod' : false;
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata,
    columnDefinitions: options.withColumns ? (isPods ? POD_COLUMNS : [NAME_COLUMN, AGE_COLUMN]) : [],
    rows: objects.map((object) => ({
      cells: object.kind === 'Pod' ? podCells(object as Pod & StoredObject) : [object.metadata.name, age(object)],
      object: options.includeObject === 'Object' ? object : options.includeObject === 'None' ? null : partialMetadata(object),
    })),
  };
}

/** Pods print with their own columns even when the list is empty. */
export function tableForResource(
  resource: string,
  objects: StoredObject[],
  metadata: Table['metadata'],
  options: { withColumns: boolean; includeObject: string | undefined },
): Table {
  const table = toTable(objects, metadata, options);
  if (options.withColumns) table.columnDefinitions = resource === 'pods' ? POD_COLUMNS : [NAME_COLUMN, AGE_COLUMN];
  return table;
}
