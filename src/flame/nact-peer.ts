/**
 * nact keeps its actor systems in a module-level map, so the app and flame-actors must share one
 * copy: with two (an app on another nact version gets a nested copy of ours), a ref spawned by
 * the app's nact is unknown to ours, and placing or reaching an actor fails with nact's untyped
 * "Actor has stopped or never even existed". `Pool.start` checks it once and says how to fix it.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { appRoot } from '../app-root.js';
import { DependencyMismatchError } from '../errors.js';

/** The nact versions this release works with (its peer dependency range). */
export const NACT_RANGE = '^7.6.2';

let checked = false;

/** Throws DependencyMismatchError when the app resolves `nact` to another copy than flame-actors does. */
export function checkNactPeer(root: string = appRoot()): void {
  if (checked) return;
  const ours = resolveNact(createRequire(import.meta.url));
  const apps = resolveNact(createRequire(join(root, 'noop.js')));
  if (ours !== undefined && apps !== undefined && ours.path !== apps.path) {
    throw new DependencyMismatchError(
      `two copies of nact: the app's (${apps.version}, ${apps.path}) and flame-actors' (${ours.version}, ${ours.path}); ` +
        `actor refs of one are unknown to the other. Install nact ${NACT_RANGE} once, at the app's top level (npm install nact@"${NACT_RANGE}", then npm dedupe)`,
      { details: { app: apps, library: ours, range: NACT_RANGE } },
    );
  }
  checked = true;
}

function resolveNact(require: NodeJS.Require): { path: string; version: string } | undefined {
  let entry: string;
  try {
    entry = require.resolve('nact');
  } catch {
    return undefined; // the app does not use nact itself: nothing to share
  }
  // The package folder: the nearest package.json named nact above its entry point (a package's
  // exports may not list package.json itself).
  for (let dir = dirname(entry), i = 0; i < 10 && dir !== dirname(dir); dir = dirname(dir), i++) {
    try {
      const { name, version } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      if (name === 'nact') return { path: dir, version: typeof version === 'string' ? version : 'unknown version' };
    } catch {
      // no package.json here: look further up
    }
  }
  return { path: dirname(entry), version: 'unknown version' };
}
