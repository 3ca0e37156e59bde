/**
 * Puts the emulated cluster together (store, API server, scheduler, kubelet, garbage collector)
 * and gives tests and the command line one handle on it.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, release, tmpdir, totalmem, type } from 'node:os';
import { join } from 'node:path';
import { PodAddressAllocator } from './addresses.js';
import { ApiServer } from './api-server.js';
import { generateClusterCertificates } from './certs.js';
import { DisruptionController } from './disruption.js';
import { EventRecorder } from './events.js';
import { FaultInjector } from './faults.js';
import { GarbageCollector } from './garbage-collector.js';
import { EXAMPLE_IMAGE, exampleImageDefinition, ImageTable, type ImageDefinition } from './images.js';
import { Kubelet } from './kubelet.js';
import { renderKubeconfig, writeKubeconfig } from './kubeconfig.js';
import { ProcessLauncher, type ServiceAccountMode } from './process-launcher.js';
import { WorkQueue } from './work-queue.js';
import { ADMIN_USER, Authorizer, type PolicyRule } from './rbac.js';
import { bootstrapClusterRoleBindings, bootstrapClusterRoles, grantRules } from './rbac-bootstrap.js';
import { NamespaceControllers } from './namespace-controllers.js';
import { defaultTolerationSecondsAdmission, serviceAccountAdmission } from './pod-admission.js';
import { podSecurityAdmission } from './pod-security.js';
import { Registry } from './registry.js';
import { QuotaController, resourceQuotaAdmission } from './resource-quota.js';
import { Scheduler } from './scheduler.js';
import { ObjectStore } from './store.js';
import { WatchHub } from './watch.js';
import { WorkloadControllers } from './workload-controllers.js';

export interface EmulatedClusterOptions {
  /** Address the API server listens on (default `127.0.0.1`; loopback only). */
  host?: string;
  /** Port (default 0: an ephemeral port). */
  port?: number;
  /** Where to write the admin kubeconfig (default: a file in the cluster's temporary folder). */
  kubeconfigPath?: string;
  /**
   * Initial image table: image name to default command, as a Dockerfile's ENTRYPOINT/CMD would
   * give. `node` (any tag) is always there, running this process's Node.js.
   */
  images?: Record<string, ImageDefinition>;
  /** Working directory of containers whose image names none (default: the emulator's own). */
  workingDir?: string;
  /** Environment every container starts with before its image's and its own (default: PATH, HOME, LANG, TZ, TMPDIR of this process). */
  baseEnv?: Record<string, string>;
  /**
   * How pods see their service-account files: `'mount'` at the standard path (root only),
   * `'folder'` in a per-pod folder named by `FLAME_SERVICEACCOUNT_DIR`, `'auto'` (default) the first that works.
   */
  serviceAccountMode?: ServiceAccountMode;
  /** How many changes watches can resume from before 410 Gone (default 1000). */
  historyLimit?: number;
  /** Interval of watch bookmarks when asked for (default 60 s, as the real watch cache). */
  bookmarkIntervalMs?: number;
  /**
   * The API server's `--min-request-timeout`: a watch without `timeoutSeconds` ends after this
   * times a random 1 to 2 (default 1800 s, so 30 to 60 min, as the real server).
   */
  minRequestTimeoutSeconds?: number;
  /** Crash-loop back-off: first delay and cap (default 10 s and 300 s, as a real kubelet). */
  restartBackoffMs?: { initial?: number; max?: number };
  /** Delay before `ErrImagePull` becomes `ImagePullBackOff` (default 2 s). */
  imagePullBackoffMs?: number;
  /** Output kept per container (default 1 MiB). */
  logLimitBytes?: number;
  /** Node name pods are bound to (default `emulated-node`). */
  nodeName?: string;
}

export interface EmulatedCluster {
  /** `https://127.0.0.1:PORT` */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** An admin kubeconfig, usable as it is by kubectl and client-node. */
  readonly kubeconfigPath: string;
  /** The cluster CA (PEM) that signs the API server's certificate. */
  readonly caPem: string;
  /** A token with every permission (`system:masters`). */
  readonly adminToken: string;
  readonly images: ImageTable;
  readonly faults: FaultInjector;
  /** Whether pods see their service-account files at the standard path (else via `FLAME_SERVICEACCOUNT_DIR`). */
  readonly mountsServiceAccount: boolean;
  /**
   * Creates the service account (and its namespace) and, with `rules`, a Role and RoleBinding
   * granting them in that namespace (stored RBAC objects, named `NAME:grant-N`; apiGroups default
   * to the core group). Returns its token; pods with `serviceAccountName: name` mount the same.
   */
  createServiceAccount(namespace: string, name: string, rules?: PolicyRule[]): string;
  /**
   * Grants more rules to a service account: a Role and RoleBinding in `inNamespace` (default its
   * own), or a ClusterRole and ClusterRoleBinding with `'*'`.
   */
  grant(namespace: string, name: string, rules: PolicyRule[], inNamespace?: string): void;
  /** A kubeconfig (YAML text) for a token, e.g. a service account's. */
  kubeconfigFor(token: string, namespace?: string): string;
  /** Writes {@link kubeconfigFor} to a file (mode 0600). */
  writeKubeconfig(path: string, token?: string, namespace?: string): void;
  /** Forgets all watch history, as an etcd compaction: resuming from any older resourceVersion gets 410. */
  compactHistory(): void;
  /** Pod processes now running. */
  podProcesses(): { namespace: string; name: string; pid: number }[];
  /** Kills every pod process, closes the server, removes temporary files. Safe to call twice. */
  stop(): Promise<void>;
}

function defaultBaseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of ['PATH', 'HOME', 'LANG', 'TZ', 'TMPDIR']) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  env.PATH ??= '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  return env;
}

/** This machine's `PRETTY_NAME`, as a kubelet reports its OS image (read once, at start). */
function osImage(): string {
  try {
    const line = readFileSync('/etc/os-release', 'utf8').split('\n').find((l) => l.startsWith('PRETTY_NAME='));
    return line ? line.slice('PRETTY_NAME='.length).replace(/^"|"$/g, '') : `${type()} ${release()}`;
  } catch {
    return `${type()} ${release()}`;
  }
}

function nodeResources(): Record<string, string> {
  return { cpu: String(availableParallelism()), memory: `${Math.floor(totalmem() / 1024)}Ki`, pods: '110', 'ephemeral-storage': '10Gi' };
}

const STATE_DIR_PREFIX = 'flame-emulator-';

/**
 * An emulator killed outright (SIGKILL) cannot remove its temporary folder; the next one to start
 * removes the folders whose owner process is gone.
 */
function sweepAbandonedStateDirs(): void {
  let entries: string[];
  try {
    entries = readdirSync(tmpdir()).filter((e) => e.startsWith(STATE_DIR_PREFIX));
  } catch {
    return;
  }
  for (const entry of entries) {
    const dir = join(tmpdir(), entry);
    try {
      const owner = Number(readFileSync(join(dir, 'owner.pid'), 'utf8'));
      if (!Number.isInteger(owner) || owner <= 0) continue;
      try {
        process.kill(owner, 0);
        continue;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ESRCH') continue;
      }
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // not ours to judge (no owner file, unreadable)
    }
  }
}

function positive(value: number | undefined, fallback: number, what: string): number {
  const v = value ?? fallback;
  if (!(Number.isFinite(v) && v >= 0)) throw new RangeError(`${what} must be a non-negative number, got ${String(value)}`);
  return v;
}

/** Starts an emulated Kubernetes cluster. Always `stop()` it (e.g. in a test's `after`). */
export async function startEmulatedCluster(options: EmulatedClusterOptions = {}): Promise<EmulatedCluster> {
  const host = options.host ?? '127.0.0.1';
  if (!/^127\.\d+\.\d+\.\d+$/.test(host) && host !== 'localhost' && host !== '::1') {
    throw new Error(`the emulated cluster listens on loopback only; got host ${JSON.stringify(host)}`);
  }
  const historyLimit = options.historyLimit ?? 1000;
  const bookmarkIntervalMs = positive(options.bookmarkIntervalMs, 60_000, 'bookmarkIntervalMs');
  const minRequestTimeoutSeconds = positive(options.minRequestTimeoutSeconds, 1800, 'minRequestTimeoutSeconds');
  // The node's and the control plane's background work, run between API requests (work-queue.ts).
  const work = new WorkQueue();
  const images = new ImageTable();
  // `node` with any tag runs this Node.js, so `kubectl run x --image=node:20 -- -e '...'` works out of the box.
  images.register('node', { command: [process.execPath] }, { anyTag: true });
  images.register(EXAMPLE_IMAGE, exampleImageDefinition());
  for (const [name, definition] of Object.entries(options.images ?? {})) images.register(name, definition);

  const store = new ObjectStore(historyLimit);
  const certificates = await generateClusterCertificates([host, '127.0.0.1', 'localhost']);
  sweepAbandonedStateDirs();
  const root = mkdtempSync(join(tmpdir(), STATE_DIR_PREFIX));
  writeFileSync(join(root, 'owner.pid'), String(process.pid));
  const registry = new Registry(store, [serviceAccountAdmission, defaultTolerationSecondsAdmission, podSecurityAdmission, resourceQuotaAdmission]);
  const namespaceControllers = new NamespaceControllers(store, registry, certificates.caPem);
  const workloadControllers = new WorkloadControllers(store, registry);
  const quotaController = new QuotaController(store, registry);
  const disruptionController = new DisruptionController(store, registry);
  const authorizer = new Authorizer(registry);
  const adminToken = authorizer.addToken(ADMIN_USER);
  const watches = new WatchHub(store, { bookmarkIntervalMs: Math.max(100, bookmarkIntervalMs), minRequestTimeoutSeconds: Math.max(1, minRequestTimeoutSeconds) });
  const events = new EventRecorder(registry, 1000, work);
  const nodeName = options.nodeName ?? 'emulated-node';
  const addresses = new PodAddressAllocator();

  let kubelet: Kubelet | undefined;
  let scheduler: Scheduler | undefined;
  const faults = new FaultInjector({
    dropWatches: (cleanly) => (cleanly ? watches.closeAll() : watches.dropAll()),
    killNodeOf: (namespace, name, failure) => kubelet!.killNodeOf(namespace, name, failure),
    rescheduleWaitingPods: () => scheduler?.retryWaiting(),
  });

  for (const namespace of ['default', 'kube-node-lease', 'kube-public', 'kube-system']) registry.ensureNamespace(namespace);
  for (const role of bootstrapClusterRoles()) registry.create('clusterroles', '', role);
  for (const binding of bootstrapClusterRoleBindings()) registry.create('clusterrolebindings', '', binding);
  store.insert('nodes', '', {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: nodeName, labels: { 'kubernetes.io/hostname': nodeName, 'kubernetes.io/os': 'linux' } },
    spec: {},
    status: {
      addresses: [{ type: 'InternalIP', address: '127.0.0.1' }, { type: 'Hostname', address: nodeName }],
      // This machine's, as a kubelet reports them; `resourceFieldRef` falls back to allocatable.
      capacity: nodeResources(),
      allocatable: nodeResources(),
      conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status' }],
      nodeInfo: {
        kubeletVersion: 'v1.32.0-flame-emulator',
        operatingSystem: 'linux',
        architecture: process.arch === 'x64' ? 'amd64' : process.arch,
        containerRuntimeVersion: 'emulator://1',
        osImage: osImage(),
        kernelVersion: release(),
      },
    },
  });

  let server: ApiServer | undefined;
  let collector: GarbageCollector | undefined;
  let launcher: ProcessLauncher | undefined;
  try {
    launcher = new ProcessLauncher(options.serviceAccountMode ?? 'auto', work);
    // The kubelet needs the port in pods' environment, the server needs the kubelet for logs:
    // bind the port first with a server that the kubelet is handed afterwards.
    const holder: { kubelet?: Kubelet } = {};
    server = new ApiServer({
      registry,
      authorizer,
      faults,
      watches,
      get kubelet() {
        return holder.kubelet!;
      },
      tls: { cert: certificates.serverCertPem, key: certificates.serverKeyPem },
      host,
      port: options.port ?? 0,
    });
    const address = await server.listen();
    const apiHost = host === 'localhost' ? '127.0.0.1' : host;
    kubelet = new Kubelet(
      store,
      {
        registry,
        images,
        faults,
        events,
        launcher,
        work,
        nodeName,
        hostIP: '127.0.0.1',
        apiHost,
        apiPort: address.port,
        caPem: certificates.caPem,
        // An account deleted after its pod was admitted: the pod starts with an empty token, whose
        // requests are refused as a real revoked token's are.
        serviceAccountToken: (namespace, name) => {
          try {
            return authorizer.serviceAccountToken(namespace, name);
          } catch {
            return '';
          }
        },
        baseEnv: options.baseEnv ?? defaultBaseEnv(),
        defaultWorkingDir: options.workingDir ?? process.cwd(),
        logLimitBytes: positive(options.logLimitBytes, 1024 * 1024, 'logLimitBytes'),
        restartBackoffMs: {
          initial: positive(options.restartBackoffMs?.initial, 10_000, 'restartBackoffMs.initial'),
          max: positive(options.restartBackoffMs?.max, 300_000, 'restartBackoffMs.max'),
        },
        imagePullBackoffMs: positive(options.imagePullBackoffMs, 2_000, 'imagePullBackoffMs'),
      },
      addresses,
      join(root, 'pods'),
    );
    holder.kubelet = kubelet;
    scheduler = new Scheduler(store, registry, faults, events, nodeName, work);
    collector = new GarbageCollector(store, registry);
  } catch (error) {
    work.stop();
    await launcher?.close().catch(() => {});
    await server?.close().catch(() => {});
    rmSync(root, { recursive: true, force: true });
    throw error;
  }

  const url = `https://${host.includes(':') ? `[${host}]` : host}:${server.port}`;
  const kubeconfigPath = options.kubeconfigPath ?? join(root, 'kubeconfig');
  writeKubeconfig(kubeconfigPath, { server: url, caPem: certificates.caPem, token: adminToken });

  let stopped: Promise<void> | undefined;
  const startedServer = server;
  const startedKubelet = kubelet;
  const startedCollector = collector;
  const startedScheduler = scheduler;
  const startedLauncher = launcher;

  const cluster: EmulatedCluster = {
    url,
    host,
    port: server.port,
    kubeconfigPath,
    caPem: certificates.caPem,
    adminToken,
    images,
    faults,
    mountsServiceAccount: startedLauncher.mountsServiceAccount,
    createServiceAccount(namespace, name, rules = []) {
      registry.ensureNamespace(namespace);
      if (!registry.find('serviceaccounts', namespace, name)) registry.create('serviceaccounts', namespace, { metadata: { name } });
      if (rules.length > 0) grantRules(registry, namespace, name, rules, namespace);
      return authorizer.serviceAccountToken(namespace, name);
    },
    grant(namespace, name, rules, inNamespace = namespace) {
      grantRules(registry, namespace, name, rules, inNamespace === '*' ? undefined : inNamespace);
    },
    kubeconfigFor(token, namespace) {
      return renderKubeconfig({ server: url, caPem: certificates.caPem, token, ...(namespace ? { namespace } : {}) });
    },
    writeKubeconfig(path, token = adminToken, namespace) {
      writeKubeconfig(path, { server: url, caPem: certificates.caPem, token, ...(namespace ? { namespace } : {}) });
    },
    compactHistory() {
      store.compact();
    },
    podProcesses() {
      return startedKubelet.processes();
    },
    stop() {
      stopped ??= (async () => {
        startedScheduler.stop();
        namespaceControllers.stop();
        workloadControllers.stop();
        quotaController.stop();
        disruptionController.stop();
        startedCollector.stop();
        await startedKubelet.stop();
        work.stop();
        await startedLauncher.close();
        await startedServer.close();
        // A pod start still finishing in the spawner can write into its folder while it is removed
        // (ENOTEMPTY): retry, and never fail stop() over a temporary folder (a throw here would
        // leave a caller's clean-up half done).
        try {
          rmSync(root, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
        } catch {
          // Left in the system's temporary folder; every process and socket is already gone.
        }
      })();
      return stopped;
    },
  };
  return cluster;
}
