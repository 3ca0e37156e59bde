#!/usr/bin/env node
/**
 * The runner entry point: `node dist/src/runner/main.js`, started by a backend with
 * FLAME_PARENT and FLAME_COOKIE set (POD_IP and FLAME_PORT optional).
 */
import { startRunner } from './runner.js';

try {
  await startRunner();
} catch (error) {
  process.stderr.write(`flame runner: ${(error as Error).message}\n`);
  process.exit(1);
}
