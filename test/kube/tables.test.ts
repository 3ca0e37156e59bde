import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmulatedCluster, type EmulatedCluster } from '../../src/testing/index.js';
import { kubectl, kubectlUntil, POD_MARKER } from './helpers.js';

/** The header words of kubectl's table output, and its rows split on runs of spaces. */
function parse(stdout: string): { header: string[]; rows: string[][] } {
  const lines = stdout.trimEnd().split('\n');
  const split = (line: string) => line.trim().split(/\s{2,}/);
  return { header: split(lines[0]!), rows: lines.slice(1).map(split) };
}

describe('kubectl get tables of the emulated cluster', function () {
  let cluster: EmulatedCluster;
  let kubeconfig: string;

  before(async function () {
    cluster = await startEmulatedCluster();
    kubeconfig = join(tmpdir(), `tables-${process.pid}.kubeconfig`);
    writeFileSync(kubeconfig, cluster.kubeconfigFor(cluster.adminToken));
    const created = await kubectl(kubeconfig, ['create', 'secret', 'generic', 'two-keys', '--from-literal=a=1', '--from-literal=b=2']);
    expect(created.code, created.stderr).to.equal(0);
  });

  after(async function () {
    await cluster?.stop();
  });

  it('prints namespaces with STATUS', async function () {
    const { header, rows } = parse((await kubectl(kubeconfig, ['get', 'ns'])).stdout);
    expect(header).to.deep.equal(['NAME', 'STATUS', 'AGE']);
    expect(rows.find((r) => r[0] === 'default')?.[1]).to.equal('Active');
  });

  it('prints service accounts with SECRETS', async function () {
    const { header, rows } = parse((await kubectlUntil(kubeconfig, ['get', 'sa'], (out) => out.includes('default'), 'the default account')));
    expect(header).to.deep.equal(['NAME', 'SECRETS', 'AGE']);
    expect(rows.find((r) => r[0] === 'default')?.[1]).to.equal('0');
  });

  it('prints secrets with TYPE and DATA', async function () {
    const { header, rows } = parse((await kubectl(kubeconfig, ['get', 'secrets'])).stdout);
    expect(header).to.deep.equal(['NAME', 'TYPE', 'DATA', 'AGE']);
    expect(rows.find((r) => r[0] === 'two-keys')?.slice(1, 3)).to.deep.equal(['Opaque', '2']);
  });

  it('prints configmaps with DATA', async function () {
    await kubectl(kubeconfig, ['create', 'configmap', 'one-key', '--from-literal=a=1']);
    const { header, rows } = parse((await kubectl(kubeconfig, ['get', 'cm'])).stdout);
    expect(header).to.deep.equal(['NAME', 'DATA', 'AGE']);
    expect(rows.find((r) => r[0] === 'one-key')?.[1]).to.equal('1');
  });

  it('prints nodes -o wide with STATUS, ROLES, VERSION, addresses, OS image, kernel and runtime', async function () {
    const { header, rows } = parse((await kubectl(kubeconfig, ['get', 'nodes', '-o', 'wide'])).stdout);
    expect(header).to.deep.equal(['NAME', 'STATUS', 'ROLES', 'AGE', 'VERSION', 'INTERNAL-IP', 'EXTERNAL-IP', 'OS-IMAGE', 'KERNEL-VERSION', 'CONTAINER-RUNTIME']);
    const row = rows[0]!;
    expect(row[0]).to.equal('emulated-node');
    expect(row.slice(1, 3)).to.deep.equal(['Ready', '<none>']);
    expect(row[4]).to.equal('v1.32.0-flame-emulator');
    expect(row.slice(5, 7)).to.deep.equal(['127.0.0.1', '<none>']);
    expect(row[9]).to.equal('emulator://1');
  });

  it('prints events with LAST SEEN, TYPE, REASON, OBJECT and MESSAGE (and the wide columns)', async function () {
    await kubectl(kubeconfig, ['run', 'evented', '--image=node:20', '--restart=Never', '--', '-e', 'setTimeout(() => {}, 60000)', POD_MARKER]);
    const out = await kubectlUntil(kubeconfig, ['get', 'events'], (o) => o.includes('Started'), 'the Started event');
    const { header, rows } = parse(out);
    expect(header).to.deep.equal(['LAST SEEN', 'TYPE', 'REASON', 'OBJECT', 'MESSAGE']);
    expect(rows.find((r) => r[2] === 'Started')?.slice(1)).to.deep.equal(['Normal', 'Started', 'pod/evented', 'Started container evented']);
    const wide = parse((await kubectl(kubeconfig, ['get', 'events', '-o', 'wide'])).stdout);
    expect(wide.header).to.deep.equal(['LAST SEEN', 'TYPE', 'REASON', 'OBJECT', 'SUBOBJECT', 'SOURCE', 'MESSAGE', 'FIRST SEEN', 'COUNT', 'NAME']);
    expect(wide.rows.find((r) => r[2] === 'Started')).to.include('kubelet, emulated-node');
    await kubectl(kubeconfig, ['delete', 'pod', 'evented', '--grace-period=0', '--force']);
  });

  it('prints deployments with READY, UP-TO-DATE, AVAILABLE and replicasets with DESIRED, CURRENT, READY', async function () {
    const manifest = join(tmpdir(), `web-${process.pid}.json`);
    writeFileSync(
      manifest,
      JSON.stringify({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'web' },
        spec: {
          replicas: 2,
          selector: { matchLabels: { app: 'web' } },
          template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'node', image: 'node:20', command: ['node', '-e', 'setInterval(() => {}, 1000)', POD_MARKER] }] } },
        },
      }),
    );
    const created = await kubectl(kubeconfig, ['apply', '-f', manifest]);
    // kubectl create deployment sends its body as protobuf: decoded too.
    const typed = await kubectl(kubeconfig, ['create', 'deployment', 'typed', '--image=node:20', '--replicas=1', '--port=8080', '--', 'node', '-e', 'setInterval(() => {}, 1000)', POD_MARKER]);
    expect(typed.code, typed.stderr).to.equal(0);
    const typedJson = JSON.parse((await kubectl(kubeconfig, ['get', 'deployment', 'typed', '-o', 'json'])).stdout) as {
      spec: { replicas: number; selector: { matchLabels: Record<string, string> }; template: { spec: { containers: { image: string; command: string[]; ports: { containerPort: number }[] }[] } } };
    };
    expect(typedJson.spec.replicas).to.equal(1);
    expect(typedJson.spec.selector.matchLabels).to.deep.equal({ app: 'typed' });
    expect(typedJson.spec.template.spec.containers[0]).to.deep.include({ image: 'node:20', command: ['node', '-e', 'setInterval(() => {}, 1000)', POD_MARKER] });
    expect(typedJson.spec.template.spec.containers[0]!.ports[0]!.containerPort).to.equal(8080);
    await kubectl(kubeconfig, ['delete', 'deployment', 'typed']);
    expect(created.code, created.stderr).to.equal(0);
    const deployments = parse(await kubectlUntil(kubeconfig, ['get', 'deployments'], (o) => /web\s+2\/2\s+2\s+2/.test(o), 'the deployment ready'));
    expect(deployments.header).to.deep.equal(['NAME', 'READY', 'UP-TO-DATE', 'AVAILABLE', 'AGE']);
    const wide = parse((await kubectl(kubeconfig, ['get', 'deployments', '-o', 'wide'])).stdout);
    expect(wide.header).to.deep.equal(['NAME', 'READY', 'UP-TO-DATE', 'AVAILABLE', 'AGE', 'CONTAINERS', 'IMAGES', 'SELECTOR']);
    expect(wide.rows[0]!.slice(5)).to.deep.equal(['node', 'node:20', 'app=web']);
    const replicaSets = parse((await kubectl(kubeconfig, ['get', 'replicasets'])).stdout);
    expect(replicaSets.header).to.deep.equal(['NAME', 'DESIRED', 'CURRENT', 'READY', 'AGE']);
    expect(replicaSets.rows[0]![0]).to.match(/^web-[a-z0-9]+$/);
    expect(replicaSets.rows[0]!.slice(1, 4)).to.deep.equal(['2', '2', '2']);
    await kubectl(kubeconfig, ['delete', 'deployment', 'web']);
  });
});
