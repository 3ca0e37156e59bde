/**
 * Which file a process runner starts: flame-actors' runner entry point, bundled by the build when
 * it can be (see {@link runnerEntry}), else as compiled.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const RUNNER_MAIN = fileURLToPath(new URL('../../runner/main.js', import.meta.url));
/** The same entry point bundled into one file by the build (scripts/bundle-runner.mjs), and what it carries. */
const RUNNER_BUNDLE = fileURLToPath(new URL('../../runner-bundle.cjs', import.meta.url));
/** Runs the bundle with a V8 code cache (src/runner/start-bundle.cts). */
const START_BUNDLE = fileURLToPath(new URL('../../runner/start-bundle.cjs', import.meta.url));

let entry: string | undefined;

/**
 * The file a runner process starts: the bundle (through its starter, which compiles it with a V8
 * code cache), which boots sooner (one file to read and compile instead of ~60, no ES module
 * loader until the app's code is imported), when the build made it and the nact beside it is the
 * version it carries (it shares its copy of nact with the app); else the unbundled entry point
 * (tsc alone, or another nact installed since the build). `bundle` is for tests.
 */
export function runnerEntry(bundle: string = RUNNER_BUNDLE): string {
  if (bundle === RUNNER_BUNDLE && entry !== undefined) return entry;
  const chosen = !bundleUsable(bundle) ? RUNNER_MAIN : bundle === RUNNER_BUNDLE ? START_BUNDLE : bundle;
  if (bundle === RUNNER_BUNDLE) entry = chosen;
  return chosen;
}

function bundleUsable(bundle: string): boolean {
  try {
    const carries = JSON.parse(readFileSync(bundle.replace(/\.cjs$/, '.json'), 'utf8')) as { nact?: unknown; sources?: unknown; inputs?: unknown };
    const installed = (createRequire(bundle)('nact/package.json') as { version?: unknown }).version;
    if (typeof carries.nact !== 'string' || carries.nact !== installed || !Array.isArray(carries.inputs) || !existsSync(bundle)) return false;
    // Stale when a file it was made of changed since (tsc run alone after an edit): ~40 small
    // files hashed once per process.
    const sources = createHash('sha256');
    for (const input of carries.inputs) sources.update(readFileSync(join(dirname(bundle), String(input))));
    return sources.digest('hex') === carries.sources;
  } catch {
    return false; // no bundle, no record of what it carries, a file of it gone, or no nact beside it
  }
}
