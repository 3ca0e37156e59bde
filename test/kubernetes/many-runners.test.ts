import { expect } from 'chai';
import { KubernetesBackend } from '../../src/backends/kubernetes/backend.js';
import { startPool } from '../helpers/pools.js';
import { runnerPods, startTestBed, type TestBed } from './helpers.js';

describe('KubernetesBackend with many runners', function () {
  this.timeout(120_000);
  let bed: TestBed;

  before(async function () {
    bed = await startTestBed();
  });

  after(async function () {
    await bed?.stop();
  });

  it('stops a pool of 12 runner pods without MaxListenersExceededWarning, leaving no pod', async function () {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    try {
      const parent = 'shop-many';
      await bed.createParentPod(parent);
      const pool = await startPool({
        name: 'many', backend: new KubernetesBackend(bed.options(parent)), node: bed.node, max: 12, maxConcurrency: 1, shutdownTimeout: 1000, log: false,
      });
      const results = await Promise.all(Array.from({ length: 12 }, (_, i) => pool.call(async (n: number) => {
        await new Promise((resolve) => setTimeout(resolve, 3000));
        return n;
      }, [i])));
      expect(results).to.have.length(12);
      expect(pool.status().runners.length).to.equal(12);
      await pool.stop();
      expect(await runnerPods(bed.api, 'many')).to.have.length(0);
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings.filter((w) => w.includes('MaxListeners'))).to.deep.equal([]);
    } finally {
      process.off('warning', onWarning);
    }
  });
});
