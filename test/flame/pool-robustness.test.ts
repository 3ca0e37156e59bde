import { expect } from 'chai';
import { ProcessBackend } from '../../src/backends/process/backend.js';
import { startNode, type ClusterNode } from '../../src/cluster/node.js';
import { SERVICE } from '../../src/flame/protocol.js';
import { startPool } from '../helpers/pools.js';

/**
 * The parent-side services answer whatever a runner (or an impostor with the cookie) sends:
 * late, duplicate and unknown check-ins change nothing and never take the pool down (FLAME #66).
 */
describe('Pool robustness', function () {
  const nodes: ClusterNode[] = [];
  afterEach(async function () {
    await Promise.all(nodes.splice(0).map((n) => n.stop()));
  });

  it('ignores late, duplicate and unknown check-ins and keeps serving', async function () {
    const parent = await startNode({ name: 'robust@127.0.0.31', port: 0, cookie: 'robust', log: false });
    nodes.push(parent);
    const pool = await startPool({ name: 'robust', node: parent, backend: new ProcessBackend({ stdio: 'ignore' }), max: 1, shutdownTimeout: 500 });
    expect(await pool.call(() => 1)).to.equal(1);
    const [runner] = pool.status().runners;
    const stranger = await startNode({ name: 'stranger@127.0.0.32', port: 0, cookie: 'robust', log: false });
    nodes.push(stranger);
    const ask = (service: string, payload: unknown) => stranger.request(parent.name, service, payload, { timeout: 5000 }).then((v) => v, (e: Error) => e);

    expect(await ask(SERVICE.childExit, { runner: runner!.id, child: 999 })).to.equal(true);
    expect(await ask(SERVICE.childExit, { runner: runner!.id, child: 999 })).to.equal(true);
    expect(await ask(SERVICE.childExit, { runner: 'nobody-7', child: 1 })).to.equal(true);
    expect(await ask(SERVICE.childExit, 'garbage')).to.equal(true);
    expect(await ask(SERVICE.idle, { runner: 'nobody-7' })).to.deep.equal({ stop: true });
    const late = await ask(SERVICE.ready, { runner: 'robust-99', pool: 'robust' });
    expect(String(late)).to.match(/no pool on robust@127\.0\.0\.31:\d+ is booting runner robust-99/);
    expect(await ask('flame.nonsense', {})).to.match(/unknown service "flame.nonsense"/);

    expect(pool.status().runners[0]).to.include({ id: runner!.id, state: 'ready', load: 0 });
    expect(await Promise.all([1, 2, 3].map((x) => pool.call((n: number) => n * 10, [x])))).to.deep.equal([10, 20, 30]);
  });
});
