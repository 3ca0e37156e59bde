/**
 * The admission plugins every pod meets on a real cluster before Pod Security and quota:
 *  - ServiceAccount: the pod's account must exist (else the real 403), and unless automounting is
 *    off (on the pod or the account) the pod gets the `kube-api-access-*` projected volume (token,
 *    `kube-root-ca.crt`, namespace) mounted read-only at the standard path in every container;
 *  - DefaultTolerationSeconds: tolerate `not-ready` and `unreachable` nodes for 300 s.
 */
import type { AdmissionPlugin } from './admission.js';
import { SERVICE_ACCOUNT_MOUNT } from './process-launcher.js';
import { apiErrors } from './status.js';
import { randomSuffix } from './strategy.js';
import type { Pod } from './types.js';

export const ROOT_CA_CONFIG_MAP = 'kube-root-ca.crt';

type Volume = NonNullable<NonNullable<Pod['spec']>['volumes']>[number];

function apiAccessVolume(name: string): Volume {
  return {
    name,
    projected: {
      defaultMode: 0o644,
      sources: [
        { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
        { configMap: { name: ROOT_CA_CONFIG_MAP, items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
        { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
      ],
    },
  };
}

export const serviceAccountAdmission: AdmissionPlugin = {
  name: 'ServiceAccount',
  admit(request, ctx) {
    if (request.definition.name !== 'pods') return;
    const pod = request.object as Pod;
    const spec = pod.spec;
    if (!spec || !Array.isArray(spec.containers)) return;
    const accountName = spec.serviceAccountName ?? 'default';
    const account = ctx.find('serviceaccounts', request.namespace, accountName);
    if (!account) {
      throw apiErrors.forbidden(
        'pods',
        pod.metadata?.name,
        `error looking up service account ${request.namespace}/${accountName}: serviceaccount "${accountName}" not found`,
      );
    }
    const automount = spec.automountServiceAccountToken ?? (account.automountServiceAccountToken as boolean | undefined) ?? true;
    if (!automount) return;
    const containers = [...spec.containers, ...(spec.initContainers ?? [])];
    if (containers.some((c) => (c.volumeMounts ?? []).some((m) => m.mountPath === SERVICE_ACCOUNT_MOUNT))) return;
    const volumeName = `kube-api-access-${randomSuffix()}`;
    spec.volumes = [...(spec.volumes ?? []), apiAccessVolume(volumeName)];
    for (const container of containers) {
      container.volumeMounts = [...(container.volumeMounts ?? []), { name: volumeName, readOnly: true, mountPath: SERVICE_ACCOUNT_MOUNT }];
    }
  },
};

const DEFAULT_TOLERATIONS = ['node.kubernetes.io/not-ready', 'node.kubernetes.io/unreachable'];

export const defaultTolerationSecondsAdmission: AdmissionPlugin = {
  name: 'DefaultTolerationSeconds',
  admit(request) {
    if (request.definition.name !== 'pods') return;
    const spec = (request.object as Pod).spec;
    if (!spec) return;
    const tolerations = [...(spec.tolerations ?? [])];
    for (const key of DEFAULT_TOLERATIONS) {
      const tolerated = tolerations.some((t) => (t.key === key || (t.key === undefined && t.operator === 'Exists')) && (t.effect === undefined || t.effect === 'NoExecute'));
      if (!tolerated) tolerations.push({ key, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 });
    }
    spec.tolerations = tolerations;
  },
};
