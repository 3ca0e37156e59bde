import { expect } from 'chai';
import { ProcessBackend } from '../../src/backends/process/backend.js';
import type { BackendContext } from '../../src/flame/backend.js';
import { startNode } from '../../src/cluster/node.js';
import { startPool } from '../helpers/pools.js';

/** A process backend that asks for encrypted links, as the Kubernetes backend does. */
class EncryptedProcessBackend extends ProcessBackend {
  readonly encryptLinks = true;
  parentEncrypted: boolean | undefined;
  override async init(context: BackendContext): Promise<void> {
    this.parentEncrypted = context.node.encrypted;
    await super.init(context);
  }
}

describe('Pool with encrypted links', function () {
  this.timeout(60_000);

  it('runs calls on runners whose links to an encrypted parent node are TLS (a plaintext runner would be refused)', async function () {
    const node = await startNode({ name: 'tls-parent@127.0.0.57', port: 0, cookie: 'pool-tls-cookie', tls: 'auto', log: false });
    try {
      const pool = await startPool({ backend: new ProcessBackend({ stdio: 'ignore' }), node, max: 1, shutdownTimeout: 1000 });
      expect(await pool.call((a: number, b: number) => a + b, [2, 3])).to.equal(5);
      await pool.stop();
    } finally {
      await node.stop();
    }
  });

  it('gives a backend that asks for encryption an encrypted shared parent node, and its runners follow', async function () {
    const backend = new EncryptedProcessBackend({ stdio: 'ignore' });
    const pool = await startPool({ name: 'encrypted', backend, max: 1, shutdownTimeout: 1000 });
    expect(backend.parentEncrypted).to.equal(true);
    expect(await pool.call(() => 'over tls')).to.equal('over tls');
  });
});
