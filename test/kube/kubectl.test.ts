import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmulatedCluster, type EmulatedCluster } from '../../src/testing/index.js';
import { eventually, kubectl, kubectlUntil, POD_MARKER } from './helpers.js';

const POD_YAML = (name: string, extraLabel = '') => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  labels:
    app: demo${extraLabel}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: main
    image: node:20
    command: ["node", "-e", "process.on('SIGTERM', () => process.exit(0)); console.log('serving on', process.env.POD_IP); setInterval(() => {}, 1000)", "${POD_MARKER}"]
    env:
    - name: POD_IP
      valueFrom:
        fieldRef:
          fieldPath: status.podIP
`;

describe('Emulated cluster through kubectl', function () {
  this.timeout(40_000);
  let cluster: EmulatedCluster;
  let dir: string;
  let kubeconfig: string;

  before(async function () {
    cluster = await startEmulatedCluster();
    kubeconfig = cluster.kubeconfigPath;
    dir = mkdtempSync(join(tmpdir(), 'kubectl-spec-'));
  });

  after(async function () {
    await cluster?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('applies a manifest, then lists the pod Running with its IP', async function () {
    writeFileSync(join(dir, 'pod.yaml'), POD_YAML('demo'));
    const applied = await kubectl(kubeconfig, ['apply', '-f', join(dir, 'pod.yaml')]);
    expect(applied.stderr).to.equal('');
    expect(applied.stdout.trim()).to.equal('pod/demo created');
    const table = await kubectlUntil(kubeconfig, ['get', 'pods'], (out) => /demo\s+1\/1\s+Running\s+0/.test(out), 'the pod to run');
    expect(table).to.match(/^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE/);
    const wide = await kubectl(kubeconfig, ['get', 'pod', 'demo', '-o', 'wide']);
    expect(wide.stdout).to.match(/127\.1\.\d+\.\d+\s+emulated-node/);
    const short = await kubectl(kubeconfig, ['get', 'po', '-l', 'app=demo', '-o', 'name']);
    expect(short.stdout.trim()).to.equal('pod/demo');
  });

  it('reapplies a changed manifest as a patch', async function () {
    writeFileSync(join(dir, 'pod.yaml'), POD_YAML('demo', '\n    tier: web'));
    const applied = await kubectl(kubeconfig, ['apply', '-f', join(dir, 'pod.yaml')]);
    expect(applied.stdout.trim(), applied.stderr).to.equal('pod/demo configured');
    const labels = await kubectl(kubeconfig, ['get', 'pod', 'demo', '-o', 'jsonpath={.metadata.labels.tier}']);
    expect(labels.stdout).to.equal('web');
  });

  it('prints the pod as YAML with the fields the server sets', async function () {
    const yaml = (await kubectl(kubeconfig, ['get', 'pod', 'demo', '-o', 'yaml'])).stdout;
    for (const field of ['uid:', 'resourceVersion:', 'creationTimestamp:', 'kubectl.kubernetes.io/last-applied-configuration', 'podIP: 127.1.', 'phase: Running', 'nodeName: emulated-node']) {
      expect(yaml).to.include(field);
    }
  });

  it('describes the pod with its conditions and events', async function () {
    const described = (await kubectl(kubeconfig, ['describe', 'pod', 'demo'])).stdout;
    expect(described).to.match(/Status:\s+Running/);
    expect(described).to.match(/POD_IP:\s+\(v1:status\.podIP\)/);
    expect(described).to.match(/Ready\s+True/);
    expect(described).to.match(/Normal\s+Scheduled\s+.*default-scheduler\s+Successfully assigned default\/demo to emulated-node/);
    expect(described).to.match(/Normal\s+Started\s+.*kubelet\s+Started container main/);
  });

  it('serves kubectl logs', async function () {
    const logs = await kubectlUntil(kubeconfig, ['logs', 'demo'], (out) => out.includes('serving on'), 'the logs');
    expect(logs).to.match(/^serving on 127\.1\.\d+\.\d+\n$/);
  });

  it('watches with get -w while kubectl delete waits for the pod to go', async function () {
    const watcher = spawn('kubectl', ['--kubeconfig', kubeconfig, 'get', 'pods', '-w', '--output-watch-events'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let seen = '';
    watcher.stdout.on('data', (chunk: Buffer) => (seen += chunk.toString()));
    try {
      await eventually(() => /demo\s+1\/1\s+Running/.test(seen), 'the watch to list the pod');
      const deleted = await kubectl(kubeconfig, ['delete', 'pod', 'demo']);
      expect(deleted.stdout.trim()).to.equal('pod "demo" deleted');
      await eventually(() => /DELETED\s+demo/.test(seen), 'the watch to see the pod deleted');
      expect(seen).to.match(/MODIFIED\s+demo\s+\S+\s+Terminating/);
    } finally {
      watcher.kill('SIGKILL');
    }
    const gone = await kubectl(kubeconfig, ['get', 'pod', 'demo']);
    expect(gone.code).to.not.equal(0);
    expect(gone.stderr.trim()).to.equal('Error from server (NotFound): pods "demo" not found');
  });

  it('shows refusals with the real texts: 403 for a service account, 422 for an invalid pod', async function () {
    const token = cluster.createServiceAccount('team', 'viewer', [{ verbs: ['get', 'list', 'watch'], resources: ['pods'] }]);
    const viewerConfig = join(dir, 'viewer.kubeconfig');
    cluster.writeKubeconfig(viewerConfig, token, 'team');
    expect((await kubectl(viewerConfig, ['get', 'pods'])).stderr.trim()).to.equal('No resources found in team namespace.');
    const refused = await kubectl(viewerConfig, ['delete', 'pod', 'x']);
    expect(refused.stderr.trim()).to.equal(
      'Error from server (Forbidden): pods "x" is forbidden: User "system:serviceaccount:team:viewer" cannot delete resource "pods" in API group "" in the namespace "team"',
    );
    expect((await kubectl(viewerConfig, ['auth', 'can-i', 'list', 'pods'])).stdout.trim()).to.equal('yes');
    expect((await kubectl(viewerConfig, ['auth', 'can-i', 'create', 'pods'])).stdout.trim()).to.equal('no');

    writeFileSync(join(dir, 'bad.yaml'), 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad\nspec:\n  containers:\n  - name: main\n');
    const invalid = await kubectl(kubeconfig, ['apply', '-f', join(dir, 'bad.yaml')]);
    expect(invalid.stderr).to.include('The Pod "bad" is invalid: spec.containers[0].image: Required value');
  });

  it('creates secrets, config maps, namespaces and service accounts with kubectl create', async function () {
    expect((await kubectl(kubeconfig, ['create', 'namespace', 'made'])).stdout.trim()).to.equal('namespace/made created');
    expect((await kubectl(kubeconfig, ['-n', 'made', 'create', 'secret', 'generic', 'cookie', '--from-literal=cookie=c00kie'])).stdout.trim()).to.equal(
      'secret/cookie created',
    );
    expect((await kubectl(kubeconfig, ['-n', 'made', 'create', 'configmap', 'settings', '--from-literal=mode=fast'])).stdout.trim()).to.equal(
      'configmap/settings created',
    );
    expect((await kubectl(kubeconfig, ['-n', 'made', 'create', 'serviceaccount', 'robot'])).stdout.trim()).to.equal('serviceaccount/robot created');
    const secret = await kubectl(kubeconfig, ['-n', 'made', 'get', 'secret', 'cookie', '-o', 'jsonpath={.type} {.data.cookie}']);
    expect(secret.stdout).to.equal(`Opaque ${Buffer.from('c00kie').toString('base64')}`);
    expect((await kubectl(kubeconfig, ['-n', 'made', 'get', 'configmap', 'settings', '-o', 'jsonpath={.data.mode}'])).stdout).to.equal('fast');
    expect((await kubectl(kubeconfig, ['auth', 'can-i', 'list', 'pods', '-n', 'made', '--as=system:serviceaccount:made:robot'])).stdout.trim()).to.equal('no');
    expect((await kubectl(kubeconfig, ['delete', 'namespace', 'made'])).stdout.trim()).to.equal('namespace "made" deleted');
    expect((await kubectl(kubeconfig, ['get', 'secrets', '-n', 'made'])).stderr.trim()).to.equal('No resources found in made namespace.');
  });

  it('runs a pod with kubectl run and the node image', async function () {
    const run = await kubectl(kubeconfig, ['run', 'hello', '--image=node:20', '--restart=Never', '--', '-e', 'console.log("hello")', POD_MARKER]);
    expect(run.stdout.trim()).to.equal('pod/hello created');
    await kubectlUntil(kubeconfig, ['get', 'pod', 'hello'], (out) => /hello\s+0\/1\s+Completed/.test(out), 'the pod to complete');
    expect((await kubectl(kubeconfig, ['logs', 'hello'])).stdout).to.equal('hello\n');
    await kubectl(kubeconfig, ['delete', 'pod', 'hello']);
  });
});
