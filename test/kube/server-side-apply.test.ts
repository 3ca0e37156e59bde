import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmulatedCluster, type EmulatedCluster } from '../../src/testing/index.js';
import { kubectl, rawRequest } from './helpers.js';

describe('Server-side apply on the emulated cluster', function () {
  let cluster: EmulatedCluster;
  let kubeconfig: string;

  before(async function () {
    cluster = await startEmulatedCluster();
    kubeconfig = join(tmpdir(), `ssa-${process.pid}.kubeconfig`);
    writeFileSync(kubeconfig, cluster.kubeconfigFor(cluster.adminToken));
  });

  after(async function () {
    await cluster?.stop();
  });

  it('is refused as by a server without it: 415 naming the accepted patch types', async function () {
    const response = await rawRequest(cluster, 'PATCH', '/api/v1/namespaces/default/configmaps/ssa?fieldManager=kubectl', 'apiVersion: v1\nkind: ConfigMap\n', {
      'Content-Type': 'application/apply-patch+yaml',
    });
    expect(response.status).to.equal(415);
    expect(JSON.parse(response.text)).to.deep.include({
      kind: 'Status',
      status: 'Failure',
      reason: 'UnsupportedMediaType',
      code: 415,
      message:
        'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json',
    });
  });

  it('makes kubectl apply --server-side say that the server does not offer it', async function () {
    const manifest = join(tmpdir(), `ssa-${process.pid}.yaml`);
    writeFileSync(manifest, 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: "1"\n');
    const applied = await kubectl(kubeconfig, ['apply', '--server-side', '-f', manifest]);
    expect(applied.code).to.not.equal(0);
    expect(applied.stderr).to.include('Server-side apply not available on the server');
    const clientSide = await kubectl(kubeconfig, ['apply', '-f', manifest]);
    expect(clientSide.code, clientSide.stderr).to.equal(0);
  });
});

describe('kubectl explain on the emulated cluster', function () {
  let cluster: EmulatedCluster;
  let kubeconfig: string;

  before(async function () {
    cluster = await startEmulatedCluster();
    kubeconfig = join(tmpdir(), `explain-${process.pid}.kubeconfig`);
    writeFileSync(kubeconfig, cluster.kubeconfigFor(cluster.adminToken));
  });

  after(async function () {
    await cluster?.stop();
  });

  it('explains pod.spec from the served OpenAPI v3 schemas', async function () {
    const explained = await kubectl(kubeconfig, ['explain', 'pod.spec']);
    expect(explained.code, explained.stderr).to.equal(0);
    expect(explained.stdout).to.include('KIND:       Pod');
    expect(explained.stdout).to.include('FIELD: spec <PodSpec>');
    expect(explained.stdout).to.include('PodSpec is a description of a pod.');
    expect(explained.stdout).to.match(/containers\s+<\[\]Container> -required-/);
  });

  it('explains fields of the apps group and nested types', async function () {
    const replicas = await kubectl(kubeconfig, ['explain', 'deployment.spec.replicas']);
    expect(replicas.code, replicas.stderr).to.equal(0);
    expect(replicas.stdout).to.include('GROUP:      apps');
    expect(replicas.stdout).to.include('FIELD: replicas <integer>');
    const resources = await kubectl(kubeconfig, ['explain', 'pod.spec.containers.resources.limits']);
    expect(resources.code, resources.stderr).to.equal(0);
    expect(resources.stdout).to.match(/FIELD: limits <map\[string\]\w+>/);
    expect(resources.stdout).to.include('Limits describes the maximum amount of compute resources allowed.');
  });
});
