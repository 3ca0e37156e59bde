/**
 * The lower layer a pool is built on: cluster nodes named name@host:port, each with its own nact
 * actor system, linked over authenticated WebSockets. Two nodes in one process, on two loopback
 * addresses, as two pods would be on their POD_IPs.
 *
 *   npm run build && node dist/examples/cluster-nodes.js
 */
import { randomBytes } from 'node:crypto';
import { dispatch, query, type Ref } from 'nact';
import { startNode, type ClusterNode } from '../src/index.js';
import type { CounterMsg, CounterReply } from './actors.js';

const cookie = randomBytes(18).toString('base64url'); // the cluster's shared secret
const ACTORS = new URL('./actors.js', import.meta.url).href;

let a: ClusterNode | undefined;
let b: ClusterNode | undefined;
try {
  a = await startNode({ name: 'a', host: '127.0.0.2', port: 0, cookie, log: false });
  b = await startNode({ name: 'b', host: '127.0.0.3', port: 0, cookie, log: false });
  console.log(`nodes up: ${a.name} and ${b.name}`);
  a.on('nodeup', (node) => console.log(`a: nodeup ${node}`));

  // Spawn an actor on b from a module export, resolved by b itself; a gets a nact ref back.
  const counter = await a.spawnRemote<CounterMsg>(b.name, { module: ACTORS, export: 'counter' }, [100], { timeout: 5000 });
  console.log(`a spawned a counter on b: ${String(counter)}`);

  // nact's own dispatch and query work on the remote ref: the node routes them over the link.
  dispatch(counter, { type: 'inc', by: 20 });
  const reply = await query(counter, (sender: Ref<CounterReply>) => ({ type: 'get', sender }), 2000);
  console.log(`a queried it across the link: count ${reply.count}`);
  console.log(`a is connected to: ${a.connectedNodes().join(', ')}`);

  // monitor: a hears once when b goes down (socket closed or heartbeat missed).
  const down = new Promise<string>((resolve) => a!.monitor(b!.name, (reason) => resolve(reason.message)));
  await b.stop();
  const reason = await Promise.race([down, new Promise<string>((resolve) => setTimeout(() => resolve('(no nodedown within 7 s)'), 7000).unref())]);
  console.log(`a's monitor fired: b is down: ${reason}`);
  try {
    await query(counter, (sender: Ref<CounterReply>) => ({ type: 'get', sender }), 1000);
  } catch (error) {
    console.log(`querying the actor on the stopped node fails: ${(error as Error & { code?: string }).code}: ${(error as Error).message}`);
  }
} finally {
  await b?.stop();
  await a?.stop();
  console.log('nodes stopped');
}
