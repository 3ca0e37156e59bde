/**
 * What kube-controller-manager puts in every namespace as soon as it exists: the `default`
 * service account (service-account controller) and the `kube-root-ca.crt` config map holding the
 * cluster CA (root-ca-cert-publisher). Both come back if deleted while the namespace is active.
 * Store listeners run synchronously, so both exist by the time a namespace create is answered.
 */
import { ROOT_CA_CONFIG_MAP } from './pod-admission.js';
import type { Registry } from './registry.js';
import { StoreController } from './controller.js';
import type { ObjectStore, StoreChange } from './store.js';

const CA_DESCRIPTION =
  'Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the ' +
  'internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.';

export class NamespaceControllers extends StoreController {
  constructor(
    store: ObjectStore,
    registry: Registry,
    private readonly caPem: string,
  ) {
    super(store, registry);
  }

  protected onChange(change: StoreChange): void {
    if (change.resource === 'namespaces' && change.type === 'ADDED') this.populate(change.object.metadata.name);
    else if (change.type === 'DELETED' && (change.resource === 'serviceaccounts' || change.resource === 'configmaps')) this.populate(change.namespace);
  }

  private populate(namespace: string): void {
    const object = this.store.get('namespaces', '', namespace);
    if (!object || object.metadata.deletionTimestamp) return;
    try {
      if (!this.store.get('serviceaccounts', namespace, 'default')) {
        this.registry.create('serviceaccounts', namespace, { metadata: { name: 'default' } });
      }
      if (!this.store.get('configmaps', namespace, ROOT_CA_CONFIG_MAP)) {
        this.registry.create('configmaps', namespace, {
          metadata: { name: ROOT_CA_CONFIG_MAP, annotations: { 'kubernetes.io/description': CA_DESCRIPTION } },
          data: { 'ca.crt': this.caPem },
        });
      }
    } catch (error) {
      process.emitWarning(`emulated cluster: could not populate namespace ${namespace}: ${String(error)}`);
    }
  }
}
