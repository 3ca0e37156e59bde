import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const RECORDER = fileURLToPath(new URL('../fixtures/import-recorder.js', import.meta.url));
const HEAVY = ['@kubernetes/client-node', 'kubernetes-models'];

describe('Importing flame-actors', function () {
  this.timeout(30_000);
  let dir: string;

  before(function () {
    dir = mkdtempSync(join(tmpdir(), 'flame-import-'));
  });

  after(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  /** The modules a fresh Node process resolves while it runs `script` (an ES module body). */
  async function modulesLoadedBy(name: string, script: string): Promise<string[]> {
    const log = join(dir, `${name}.log`);
    await run(process.execPath, ['--import', RECORDER, '--input-type=module', '-e', script], {
      cwd: ROOT,
      env: { ...process.env, FLAME_IMPORT_LOG: log, POD_NAME: 'web-1', POD_NAMESPACE: 'shop' },
      timeout: 20_000,
    });
    return readFileSync(log, 'utf8').split('\n').filter(Boolean);
  }

  it('loads neither the Kubernetes client nor kubernetes-models', async function () {
    const loaded = await modulesLoadedBy('import', "await import('./dist/src/index.js');");
    expect(loaded.some((url) => url.includes('/dist/src/index.js')), 'the recorder saw the import').to.equal(true);
    for (const heavy of HEAVY) expect(loaded.filter((url) => url.includes(heavy)), heavy).to.deep.equal([]);
  });

  it('constructing a KubernetesBackend and validating its options loads neither (the backend loads them when a pool initialises it)', async function () {
    const loaded = await modulesLoadedBy(
      'construct',
      "const { KubernetesBackend } = await import('./dist/src/index.js'); new KubernetesBackend({ containerName: 'web', inherit: ['tolerations'] });",
    );
    for (const heavy of HEAVY) expect(loaded.filter((url) => url.includes(heavy)), heavy).to.deep.equal([]);
  });

  it('the recorder does see the Kubernetes client when the backend is at work (the test can fail)', async function () {
    const loaded = await modulesLoadedBy('runtime', "await import('./dist/src/backends/kubernetes/runner-pods.js');");
    for (const heavy of HEAVY) expect(loaded.some((url) => url.includes(heavy)), heavy).to.equal(true);
  });
});
