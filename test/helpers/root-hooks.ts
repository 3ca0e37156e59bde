/** Mocha root hooks: whatever a test started, it is gone before the next one runs. */
import { killAllChildren } from './processes.js';
import { stopAllPools } from './pools.js';

/** How long after the last test the run may take to end by itself before what holds it is named. */
const LEAK_REPORT_AFTER_MS = 10_000;

export const mochaHooks = {
  async afterEach(): Promise<void> {
    await stopAllPools();
    await killAllChildren();
  },
  afterAll(): void {
    // The run ends by itself once nothing is left open (no `exit: true`). If something leaked (a
    // socket, a timer), the process lives on: say what holds it. The timer itself holds nothing.
    setTimeout(() => {
      process.stderr.write(`\nthe test run is still held open ${LEAK_REPORT_AFTER_MS} ms after its last test by: ${process.getActiveResourcesInfo().join(', ')}\n`);
    }, LEAK_REPORT_AFTER_MS).unref();
  },
};
