/**
 * `flame-actors/testing`: an emulated Kubernetes cluster to test Kubernetes code without a cluster.
 *
 * It speaks the real Kubernetes HTTP API over HTTPS (pods, secrets, config maps, events, watches,
 * RBAC from stored Roles and bindings, Deployments, NetworkPolicies, evictions, admission), so `@kubernetes/client-node` and `kubectl` work against it unmodified, and its kubelet
 * runs each pod as a local OS process with its own loopback address (127.1.x.y).
 *
 * ```ts
 * import { startEmulatedCluster } from 'flame-actors/testing';
 * const cluster = await startEmulatedCluster({ images: { 'my-app:1': { command: ['node', 'dist/main.js'] } } });
 * const token = cluster.createServiceAccount('app', 'my-app', [{ verbs: ['create', 'get', 'list', 'delete', 'patch', 'watch'], resources: ['pods'] }]);
 * // ... kubectl --kubeconfig cluster.kubeconfigPath get pods -A
 * await cluster.stop();
 * ```
 */
export { startEmulatedCluster } from './kube/cluster.js';
export type { EmulatedCluster, EmulatedClusterOptions } from './kube/cluster.js';
export type { ImageDefinition, ImageTable } from './kube/images.js';
export type {
  CrashOnStartOptions,
  FaultHandle,
  FaultInjector,
  NodeFailureOptions,
  PodFaultOptions,
  PodMatch,
  RequestFaultOptions,
} from './kube/faults.js';
export type { PolicyRule } from './kube/rbac.js';
export type { ServiceAccountMode } from './kube/process-launcher.js';
export { SERVICE_ACCOUNT_MOUNT } from './kube/process-launcher.js';
export { EXTERNAL_POD_ANNOTATION, POD_IP_ANNOTATION } from './kube/pod-worker.js';
