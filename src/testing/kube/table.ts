/**
 * Server-side printing (`meta.k8s.io/v1` Table), which `kubectl get` asks for: the columns and
 * status words people know from `kubectl get pods` (READY, STATUS, RESTARTS, AGE); the other
 * kinds' printers are in printers.ts.
 */
import { age, AGE_COLUMN, column, DEFAULT_PRINTER, humanDuration, NAME_COLUMN, PRINTERS, type ColumnDefinition, type Printer } from './printers.js';
import type { ContainerStatus, Pod, StoredObject } from './types.js';

export { humanDuration, PRINTERS, type Printer } from './printers.js';

export interface Table {
  kind: 'Table';
  apiVersion: 'meta.k8s.io/v1';
  metadata: { resourceVersion?: string; continue?: string; remainingItemCount?: number };
  columnDefinitions: ColumnDefinition[];
  rows: { cells: unknown[]; object: unknown }[];
}

const POD_COLUMNS = [
  NAME_COLUMN,
  column('Ready', 'The aggregate readiness state of this pod for accepting traffic.'),
  column('Status', 'The aggregate status of the containers in this pod.'),
  column('Restarts', 'The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.'),
  AGE_COLUMN,
  column('IP', 'IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.', 1),
  column('Node', 'NodeName is a request to schedule this pod onto a specific node.', 1),
  column('Nominated Node', 'nominatedNodeName is set when this pod preempts other pods on the node.', 1),
  column('Readiness Gates', 'If specified, all readiness gates will be evaluated for pod readiness.', 1),
];

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

const POD_PRINTER: Printer = { columns: POD_COLUMNS, cells: (o) => podCells(o as Pod & StoredObject) };

/** The printer of a resource: its columns even when the list is empty, and its rows. */
export function printerFor(resource: string): Printer {
  if (resource === 'pods') return POD_PRINTER;
  return PRINTERS[resource] ?? DEFAULT_PRINTER;
}

export function tableForResource(
  resource: string,
  objects: StoredObject[],
  metadata: Table['metadata'],
  options: { withColumns: boolean; includeObject: string | undefined },
): Table {
  const printer = printerFor(resource);
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata,
    columnDefinitions: options.withColumns ? printer.columns : [],
    rows: objects.map((object) => ({
      cells: printer.cells(object),
      object: options.includeObject === 'Object' ? object : options.includeObject === 'None' ? null : partialMetadata(object),
    })),
  };
}
