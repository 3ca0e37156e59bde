/**
 * ResourceQuota for pods: `pods`, `requests.cpu`/`cpu`, `requests.memory`/`memory`,
 * `limits.cpu`, `limits.memory`. The admission plugin refuses a pod that would go over a quota of
 * its namespace, or that names no request for a quota'd resource, with the real texts:
 *   pods "x" is forbidden: exceeded quota: compute, requested: requests.cpu=500m, used: requests.cpu=1, limited: requests.cpu=1
 *   pods "x" is forbidden: failed quota: compute: must specify requests.cpu for: main
 * The controller keeps each quota's `status.hard` and `status.used` current. Pods that finished
 * (Succeeded/Failed) do not count.
 */
import type { AdmissionPlugin } from './admission.js';
import { formatQuantity, parseQuantity, type Quantity } from './quantity.js';
import { apiErrors } from './status.js';
import type { StrategyContext } from './strategy.js';
import { StoreController } from './controller.js';
import type { StoreChange } from './store.js';
import type { KubeObject, Pod, StoredObject } from './types.js';

const TRACKED = ['pods', 'cpu', 'memory', 'requests.cpu', 'requests.memory', 'limits.cpu', 'limits.memory'];
const NEEDS_REQUEST = TRACKED.filter((r) => r !== 'pods');

function hardOf(quota: KubeObject): Record<string, string> {
  return ((quota.spec as { hard?: Record<string, string | number> } | undefined)?.hard ?? {}) as Record<string, string>;
}

/** What one pod uses of each tracked resource. */
function podUsage(pod: Pod): Record<string, Quantity> {
  const usage: Record<string, Quantity> = { pods: parseQuantity('1') };
  for (const container of pod.spec?.containers ?? []) {
    const { requests = {}, limits = {} } = container.resources ?? {};
    for (const [key, source] of [['requests.cpu', requests.cpu], ['requests.memory', requests.memory], ['limits.cpu', limits.cpu], ['limits.memory', limits.memory]] as const) {
      if (source === undefined) continue;
      const value = parseQuantity(String(source));
      usage[key] = usage[key] ? usage[key].add(value) : value;
    }
  }
  if (usage['requests.cpu']) usage.cpu = usage['requests.cpu'];
  if (usage['requests.memory']) usage.memory = usage['requests.memory'];
  return usage;
}

function counts(pod: StoredObject): boolean {
  const phase = (pod as Pod).status?.phase;
  return phase !== 'Succeeded' && phase !== 'Failed';
}

/** Usage of every tracked resource by the counted pods of a namespace. */
function namespaceUsage(ctx: Pick<StrategyContext, 'items'>, namespace: string): Record<string, Quantity> {
  const used: Record<string, Quantity> = {};
  for (const pod of ctx.items('pods', namespace).filter(counts)) {
    for (const [key, value] of Object.entries(podUsage(pod as Pod))) used[key] = used[key] ? used[key].add(value) : value;
  }
  return used;
}

/** The resources a container must request because a quota limits them, as `requests.cpu for: main`. */
function missingRequests(pod: Pod, hard: string[]): string[] {
  const missing: string[] = [];
  for (const resource of NEEDS_REQUEST.filter((r) => hard.includes(r)).sort()) {
    const [kind, name] = resource.includes('.') ? (resource.split('.') as ['requests' | 'limits', string]) : (['requests', resource] as const);
    const containers = (pod.spec?.containers ?? []).filter((c) => c.resources?.[kind]?.[name] === undefined).map((c) => c.name);
    if (containers.length > 0) missing.push(`${resource} for: ${containers.sort().join(',')}`);
  }
  return missing;
}

function pretty(values: Record<string, Quantity>, keys: string[]): string {
  return keys
    .sort()
    .map((k) => `${k}=${formatQuantity(values[k] ?? parseQuantity('0'))}`)
    .join(',');
}

export const resourceQuotaAdmission: AdmissionPlugin = {
  name: 'ResourceQuota',
  validate(request, ctx) {
    if (request.definition.name !== 'pods') return;
    const quotas = ctx.items('resourcequotas', request.namespace);
    if (quotas.length === 0) return;
    const pod = request.object as Pod;
    const name = pod.metadata?.name;
    const requested = podUsage(pod);
    const used = namespaceUsage(ctx, request.namespace);
    for (const quota of quotas) {
      const hard = hardOf(quota);
      const limited = Object.keys(hard).filter((k) => TRACKED.includes(k));
      const missing = missingRequests(pod, limited);
      if (missing.length > 0) throw apiErrors.forbidden('pods', name, `failed quota: ${quota.metadata.name}: must specify ${missing.join('; ')}`);
      const exceeded = limited.filter((k) => requested[k] && (used[k] ?? parseQuantity('0')).add(requested[k]).compare(parseQuantity(String(hard[k]))) > 0);
      if (exceeded.length > 0) {
        const hardValues = Object.fromEntries(exceeded.map((k) => [k, parseQuantity(String(hard[k]))]));
        throw apiErrors.forbidden(
          'pods',
          name,
          `exceeded quota: ${quota.metadata.name}, requested: ${pretty(requested, exceeded)}, used: ${pretty(used, exceeded)}, limited: ${pretty(hardValues, exceeded)}`,
        );
      }
    }
  },
};

/** Keeps `status.hard` and `status.used` of every quota current as pods come and go. */
export class QuotaController extends StoreController {
  protected onChange(change: StoreChange): void {
    if (change.resource !== 'pods' && change.resource !== 'resourcequotas') return;
    if (change.resource === 'resourcequotas' && change.type === 'DELETED') return;
    const quotas = this.store.list('resourcequotas', change.namespace);
    if (quotas.length === 0) return;
    const used = namespaceUsage(this.registry, change.namespace);
    for (const quota of quotas) {
      const hard = hardOf(quota);
      const status = {
        hard: { ...hard },
        used: Object.fromEntries(Object.keys(hard).filter((k) => TRACKED.includes(k)).map((k) => [k, formatQuantity(used[k] ?? parseQuantity('0'))])),
      };
      this.registry.mutate('resourcequotas', change.namespace, quota.metadata.name, (draft) => {
        draft.status = status;
      });
    }
  }
}
