#!/usr/bin/env node
/**
 * The runner entry point: `node dist/src/runner/main.js`, started by a backend with
 * FLAME_PARENT and FLAME_COOKIE set (POD_IP and FLAME_PORT optional). The build also bundles it
 * into dist/src/runner-bundle.cjs (see scripts/bundle-runner.mjs), which ProcessBackend starts
 * when present; no top-level await, so that it bundles to CommonJS.
 */
import { startRunner } from './runner.js';

startRunner().catch((error: unknown) => {
  process.stderr.write(`flame runner: ${(error as Error).message}\n`);
  process.exit(1);
});
