/** Mocha root hooks: whatever a test started, it is gone before the next one runs. */
import { killAllChildren } from './processes.js';
import { stopAllPools } from './pools.js';

export const mochaHooks = {
  async afterEach(): Promise<void> {
    await stopAllPools();
    await killAllChildren();
  },
};
