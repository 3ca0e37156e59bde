import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmulatedCluster, type EmulatedCluster } from '../../src/testing/index.js';
import { kubectl, rawRequest, sleeperPod } from './helpers.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('Emulated API server secrets and delete answers', function () {
  let cluster: EmulatedCluster;
  let kubeconfig: string;

  before(async function () {
    cluster = await startEmulatedCluster();
    kubeconfig = join(tmpdir(), `secrets-${process.pid}.kubeconfig`);
    writeFileSync(kubeconfig, cluster.kubeconfigFor(cluster.adminToken));
  });

  after(async function () {
    await cluster?.stop();
  });

  it('refuses a data key that is not a valid config key with 422 and the real message', async function () {
    const response = await rawRequest(cluster, 'POST', '/api/v1/namespaces/default/secrets', { metadata: { name: 'bad-key' }, data: { 'bad key': b64('x') } });
    expect(response.status).to.equal(422);
    const status = JSON.parse(response.text) as { reason: string; message: string; details: { causes: unknown[] } };
    expect(status.reason).to.equal('Invalid');
    expect(status.message).to.equal(
      'Secret "bad-key" is invalid: data[bad key]: Invalid value: "bad key": a valid config key must consist of alphanumeric characters, ' +
        "'-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
    );
    expect(status.details.causes).to.deep.include({ reason: 'FieldValueInvalid', message: status.message.slice(status.message.indexOf('Invalid value')), field: 'data[bad key]' });
    const dots = await rawRequest(cluster, 'POST', '/api/v1/namespaces/default/secrets', { metadata: { name: 'dots' }, stringData: { '..hidden': 'x' } });
    expect(dots.status).to.equal(422);
    expect((JSON.parse(dots.text) as { message: string }).message).to.equal('Secret "dots" is invalid: data[..hidden]: Invalid value: "..hidden": must not start with \'..\'');
  });

  it('refuses a kubernetes.io/tls Secret without tls.crt, also through kubectl apply', async function () {
    const response = await rawRequest(cluster, 'POST', '/api/v1/namespaces/default/secrets', {
      metadata: { name: 'half-tls' },
      type: 'kubernetes.io/tls',
      data: { 'tls.key': b64('key') },
    });
    expect(response.status).to.equal(422);
    expect(JSON.parse(response.text)).to.deep.include({
      message: 'Secret "half-tls" is invalid: data[tls.crt]: Required value',
      details: { name: 'half-tls', kind: 'Secret', causes: [{ reason: 'FieldValueRequired', message: 'Required value', field: 'data[tls.crt]' }] },
    });
    const manifest = join(tmpdir(), `half-tls-${process.pid}.yaml`);
    writeFileSync(manifest, 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: half-tls\ntype: kubernetes.io/tls\nstringData:\n  tls.key: key\n');
    const applied = await kubectl(kubeconfig, ['apply', '-f', manifest]);
    expect(applied.code).to.not.equal(0);
    expect(applied.stderr).to.include('Secret "half-tls" is invalid: data[tls.crt]: Required value');
    const good = await rawRequest(cluster, 'POST', '/api/v1/namespaces/default/secrets', {
      metadata: { name: 'full-tls' },
      type: 'kubernetes.io/tls',
      data: { 'tls.key': b64('key'), 'tls.crt': b64('crt') },
    });
    expect(good.status).to.equal(201);
  });

  it('answers DELETE of a Secret with a Success Status, and DELETE of a pod with the pod', async function () {
    const created = JSON.parse((await rawRequest(cluster, 'POST', '/api/v1/namespaces/default/secrets', { metadata: { name: 'gone' }, stringData: { a: 'b' } })).text) as {
      metadata: { uid: string };
    };
    const deleted = await rawRequest(cluster, 'DELETE', '/api/v1/namespaces/default/secrets/gone');
    expect(deleted.status).to.equal(200);
    expect(JSON.parse(deleted.text)).to.deep.equal({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Success',
      details: { name: 'gone', kind: 'secrets', uid: created.metadata.uid },
    });
    await rawRequest(cluster, 'POST', '/api/v1/namespaces/default/pods', sleeperPod('answered'));
    const pod = await rawRequest(cluster, 'DELETE', '/api/v1/namespaces/default/pods/answered?gracePeriodSeconds=0');
    expect(pod.status).to.equal(200);
    expect(JSON.parse(pod.text)).to.deep.include({ kind: 'Pod' });
    const viaKubectl = await kubectl(kubeconfig, ['delete', 'secret', 'full-tls']);
    expect(viaKubectl.stdout).to.equal('secret "full-tls" deleted\n');
  });
});
