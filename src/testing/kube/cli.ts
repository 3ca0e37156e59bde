/**
 * `npm run emulator -- --kubeconfig PATH`: runs an emulated cluster in the foreground for people
 * (try a FLAME setup on a laptop), until SIGINT/SIGTERM, then kills every pod process it started.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startEmulatedCluster, type EmulatedClusterOptions } from './cluster.js';
import { parseImageArgument } from './images.js';
import type { ServiceAccountMode } from './process-launcher.js';

const USAGE = `Usage: flame-actors emulator [options]      (in the flame-actors repository: npm run emulator -- [options])

Starts an emulated Kubernetes cluster (API server + kubelet running pods as local processes).

Options:
  --kubeconfig PATH      where to write the admin kubeconfig (default .flame-emulator/kubeconfig)
  --port N               API server port on 127.0.0.1 (default: any free port)
  --image NAME=COMMAND   register an image: pods using it run COMMAND (repeatable),
                         e.g. --image 'my-app:1=node dist/src/runner/main.js'
  --workdir DIR          working directory of image commands (default: the current directory)
  --service-account-mode auto|mount|folder
                         how pods see their service-account token (default auto)
  --help                 show this help
`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      kubeconfig: { type: 'string' },
      port: { type: 'string' },
      image: { type: 'string', multiple: true },
      workdir: { type: 'string' },
      'service-account-mode': { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const options: EmulatedClusterOptions = {
    kubeconfigPath: resolve(values.kubeconfig ?? '.flame-emulator/kubeconfig'),
    images: {},
  };
  if (values.port !== undefined) {
    const port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be a port number, got ${values.port}`);
    options.port = port;
  }
  const workingDir = values.workdir !== undefined ? resolve(values.workdir) : process.cwd();
  options.workingDir = workingDir;
  for (const argument of values.image ?? []) {
    const { name, definition } = parseImageArgument(argument, workingDir);
    options.images![name] = definition;
  }
  const mode = values['service-account-mode'];
  if (mode !== undefined) {
    if (!['auto', 'mount', 'folder'].includes(mode)) throw new Error(`--service-account-mode must be auto, mount or folder, got ${mode}`);
    options.serviceAccountMode = mode as ServiceAccountMode;
  }

  const cluster = await startEmulatedCluster(options);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`\n${signal}: stopping the emulated cluster and its pods...\n`);
    cluster.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`error while stopping: ${String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGHUP', () => stop('SIGHUP'));

  process.stdout.write(
    [
      `Emulated Kubernetes cluster listening at ${cluster.url}`,
      `Kubeconfig (admin): ${cluster.kubeconfigPath}`,
      '',
      'Try:',
      `  export KUBECONFIG=${cluster.kubeconfigPath}`,
      '  kubectl get pods -A',
      `  kubectl run hello --image=node:20 --restart=Never -- -e "console.log('hello from', process.env.HOSTNAME)"`,
      '  kubectl logs hello',
      '',
      'Apply the deploy kit (RBAC, Deployments, NetworkPolicy and Pod Security are served; NetworkPolicies are not enforced):',
      `  kubectl --kubeconfig ${cluster.kubeconfigPath} apply -k deploy/kubernetes`,
      `  kubectl --kubeconfig ${cluster.kubeconfigPath} -n flame-example rollout status deployment/flame-square`,
      '',
      `Images: ${cluster.images.names().join(', ')}`,
      `Service-account files in pods: ${cluster.mountsServiceAccount ? '/var/run/secrets/kubernetes.io/serviceaccount' : 'the folder named by $FLAME_SERVICEACCOUNT_DIR'}`,
      'Press Ctrl-C to stop (every pod process is killed).',
      '',
    ].join('\n'),
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`emulator: ${error instanceof Error ? error.message : String(error)}\n${USAGE}`);
  process.exit(2);
});
