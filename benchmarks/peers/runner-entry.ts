/**
 * A runner entry point as an app would write one (its own file started by the ProcessBackend's
 * `command`): with BENCH_BATCHED=1 it turns on nact's batched delivery before starting the runner,
 * so that actors placed on it take several queued messages per turn.
 */
import { enableBatchedDelivery } from '../../src/cluster/batched-delivery.js';
import { startRunner } from '../../src/runner/runner.js';

if (process.env.BENCH_BATCHED === '1') enableBatchedDelivery();
await startRunner();
