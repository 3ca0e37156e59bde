import { expect } from 'chai';
import { startNode, type ClusterNode } from '../../src/cluster/node.js';
import { heapAfterGc } from '../helpers/heap.js';
import { waitFor } from '../helpers/wait.js';

const COOKIE = 'leak-cookie';

/** A long-lived parent sees runners come and go: nothing may stay behind per link. */
describe('ClusterNode whose peers come and go', function () {
  this.timeout(180_000);
  let server: ClusterNode;

  beforeEach(async function () {
    server = await startNode({ name: 'longlived@127.0.0.31', port: 0, cookie: COOKIE, log: false });
    server.handle('hello', (payload) => payload);
  });

  afterEach(async function () {
    await server.stop();
  });

  /** A short-lived node: starts, makes one request (which opens a link), stops. */
  async function visit(i: number): Promise<void> {
    const visitor = await startNode({ name: `visitor${i}@127.0.0.32`, port: 0, cookie: COOKIE, log: false });
    try {
      expect(await visitor.request(server.name, 'hello', i, { timeout: 10_000 })).to.equal(i);
    } finally {
      await visitor.stop();
    }
  }

  const settled = () => waitFor(() => server.stats().peers === 0 && server.stats().connections === 0,
    'every visitor to be forgotten (peers and ws connections back to 0)', 20_000, 20);

  it('returns its heap (after GC), peer records and ws connections to their starting level after 200 peers', async function () {
    for (let i = 0; i < 20; i++) await visit(i); // warm-up: code paths compiled, pools allocated
    await settled();
    const start = await heapAfterGc();
    for (let i = 20; i < 220; i++) await visit(i);
    await settled();
    const end = await heapAfterGc();
    expect(end - start, `heap grew from ${start} to ${end} bytes over 200 peers`).to.be.below(3 * 1024 * 1024);
  });
});
