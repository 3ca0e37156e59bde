import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubernetesClient } from '../../src/backends/kubernetes/client.js';
import { InvalidOptionError, KubernetesError, MissingEnvError } from '../../src/errors.js';
import { NAMESPACE, RUNNER_RULES, startTestBed, type TestBed } from './helpers.js';

describe('KubernetesClient', function () {
  this.timeout(20_000);
  let bed: TestBed;
  let dir: string;

  before(async function () {
    bed = await startTestBed();
    dir = mkdtempSync(join(tmpdir(), 'flame-k8s-client-'));
    await bed.createParentPod('client-parent');
  });

  after(async function () {
    await bed?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** A service-account folder as the kubelet mounts it, somewhere else than the standard path. */
  function serviceAccountFolder(name: string, token: string): string {
    const folder = join(dir, name);
    mkdirSync(folder);
    writeFileSync(join(folder, 'token'), token);
    writeFileSync(join(folder, 'ca.crt'), bed.cluster.caPem);
    writeFileSync(join(folder, 'namespace'), NAMESPACE);
    return folder;
  }

  const inCluster = () => ({ KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(bed.cluster.port) });

  it('uses the service account in any tokenPath, verifying the API server with its ca.crt', async function () {
    const folder = serviceAccountFolder('sa', bed.cluster.createServiceAccount(NAMESPACE, 'reader', RUNNER_RULES));
    const client = KubernetesClient.create({ tokenPath: folder, kubeconfig: undefined }, inCluster());
    expect(client.server).to.equal(`https://127.0.0.1:${bed.cluster.port}`);
    const pod = await client.readPod(NAMESPACE, 'client-parent');
    expect(pod.metadata!.name).to.equal('client-parent');
  });

  it('says which credentials the API server rejected (401)', async function () {
    const folder = serviceAccountFolder('bogus', 'not-a-token');
    const client = KubernetesClient.create({ tokenPath: folder, kubeconfig: undefined }, inCluster());
    const error = await client.readPod(NAMESPACE, 'client-parent').then(() => undefined, (e: unknown) => e);
    expect(error).to.be.instanceOf(KubernetesError);
    expect((error as KubernetesError).message).to.equal(
      `the API server rejected the credentials (401 Unauthorized) to get pods "client-parent" in namespace "shop": check the service account token in ${folder}`,
    );
    expect(error as KubernetesError).to.include({ statusCode: 401, reason: 'Unauthorized' });
  });

  it('refuses a token file that ends with a newline, and a folder without one', function () {
    const folder = serviceAccountFolder('newline', 'abc\n');
    expect(() => KubernetesClient.create({ tokenPath: folder, kubeconfig: undefined }, inCluster())).to.throw(InvalidOptionError, /ends with whitespace/);
    expect(() => KubernetesClient.create({ tokenPath: join(dir, 'none'), kubeconfig: undefined }, inCluster()))
      .to.throw(InvalidOptionError, /option "tokenPath" must be a service-account folder with token and ca.crt/);
  });

  it('says it is not in a pod when KUBERNETES_SERVICE_HOST is missing', function () {
    expect(() => KubernetesClient.create({ tokenPath: dir, kubeconfig: undefined }, {})).to.throw(MissingEnvError, /KUBERNETES_SERVICE_HOST[\s\S]*pass \{ kubeconfig/);
  });

  it('tolerates deleting what is already gone, and reports an unreachable API server as such', async function () {
    const client = KubernetesClient.create({ tokenPath: '', kubeconfig: bed.kubeconfig });
    expect(await client.deletePod(NAMESPACE, 'never-was')).to.equal(false);
    const folder = serviceAccountFolder('nowhere', 'abc');
    const unreachable = KubernetesClient.create({ tokenPath: folder, kubeconfig: undefined }, { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: '1' });
    const error = await unreachable.createPod(NAMESPACE, { metadata: { name: 'x' } }).then(() => undefined, (e: unknown) => e);
    expect(error).to.be.instanceOf(KubernetesError);
    expect((error as KubernetesError).message).to.match(/^cannot create pods in namespace "shop": the API server at https:\/\/127\.0\.0\.1:1 is unreachable \(ECONNREFUSED/);
    expect(error as KubernetesError).to.include({ statusCode: 0, reason: 'Unreachable' });
  });
});
