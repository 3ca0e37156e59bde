/** Mocha root hooks: whatever a test started, it is gone before the next one runs. */
import { killAllChildren } from './processes.js';

export const mochaHooks = {
  async afterEach(): Promise<void> {
    await killAllChildren();
  },
};
