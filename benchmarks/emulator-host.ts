/**
 * Runs an emulated cluster in a process of its own for the emulator benchmarks, so that what they
 * measure is the server, not the load generator sharing its event loop. Sends `{ url, caPem,
 * adminToken }` once up; stops the cluster (killing every pod) when the parent disconnects.
 */
import { startEmulatedCluster } from '../src/testing/index.js';

const cluster = await startEmulatedCluster();
process.send!({ url: cluster.url, caPem: cluster.caPem, adminToken: cluster.adminToken });
process.on('message', (message: unknown) => {
  if (message === 'processes') process.send!({ processes: cluster.podProcesses().length });
});
process.on('disconnect', () => {
  void cluster.stop().finally(() => process.exit(0));
});
