/**
 * Runs a bundle the build made (a CommonJS file) as Node would run it, but compiled with a V8
 * code cache, so that the functions a start runs are deserialized instead of parsed and compiled
 * again by every process: the runner bundle (src/runner/start-bundle.cts) and, in a runner that is
 * the app's own entry point, the package's (`import 'flame-actors'`, scripts/bundle-package.mjs).
 *
 * The cache is made by the first process that finds none (or one V8 rejects: another Node, other
 * V8 flags), half a second after it started (when its start has compiled what a start needs) or
 * as it exits, whichever comes first. It is written beside the bundle (where the code itself is,
 * so it is trusted as the code is), through a temporary file renamed into place, and named by the
 * bundle's content hash (V8 checks a cache's version and flags but only the length of the
 * source) and the process's Node flags. Where that folder is read-only, processes compile
 * without a cache.
 *
 * No importModuleDynamically: on Node 20 a function restored from the cache loses it, so the
 * bundles import through a process-wide slot their starter fills (see src/dynamic-import.ts).
 */
import { createHash } from 'node:crypto';
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import Module from 'node:module';
import { basename, dirname, join } from 'node:path';
import vm from 'node:vm';

/** After this long a process has usually started: the cache then holds what a start compiles. */
const WRITE_CACHE_AFTER_MS = 500;

/** How the code cache went: 'accepted', 'rejected' (then rewritten), 'none' (then written) or 'unreadable' (no hash). */
export type CodeCacheState = 'accepted' | 'rejected' | 'none' | 'unreadable';

/**
 * Runs `bundle` (a .cjs file) as a CommonJS module of its own file, compiled with the code cache
 * named by `hash` (its content hash, from the build's record; no cache without one), and returns
 * its module and how the cache went.
 */
export function runCached(bundle: string, hash: unknown): { module: Module; state: CodeCacheState } {
  // One cache per set of Node flags (V8 rejects a cache made under other V8 flags): processes
  // that differ in flags do not overwrite each other's.
  const flags = createHash('sha256').update(process.execArgv.join('\0')).digest('hex').slice(0, 8);
  const stem = basename(bundle).replace(/\.cjs$/, '');
  const cacheFile = typeof hash === 'string' && /^[0-9a-f]+$/.test(hash) ? join(dirname(bundle), `${stem}.${hash}.${flags}.v8cache`) : undefined;
  let cachedData: Buffer | undefined;
  try {
    if (cacheFile !== undefined) cachedData = readFileSync(cacheFile);
  } catch {
    // none yet
  }
  const script = new vm.Script(Module.wrap(readFileSync(bundle, 'utf8')), { filename: bundle, ...(cachedData ? { cachedData } : {}) });
  const state: CodeCacheState = cacheFile === undefined ? 'unreadable' : cachedData === undefined ? 'none' : script.cachedDataRejected === true ? 'rejected' : 'accepted';
  if (cacheFile !== undefined && state !== 'accepted') {
    let written = false;
    const write = () => {
      if (written) return;
      written = true;
      const temporary = `${cacheFile}.${process.pid}.tmp`;
      try {
        writeFileSync(temporary, script.createCachedData());
        renameSync(temporary, cacheFile);
      } catch {
        // a read-only install: processes compile without a cache
        try {
          rmSync(temporary, { force: true });
        } catch {
          // nothing was written
        }
      }
    };
    setTimeout(write, WRITE_CACHE_AFTER_MS).unref();
    process.once('exit', write); // a process that ends sooner
  }
  // The bundle as a CommonJS module of its own file, as `require(bundle)` would run it.
  const module = new Module(bundle);
  module.filename = bundle;
  require.cache[bundle] = module;
  (script.runInThisContext() as (...args: unknown[]) => unknown)(module.exports, Module.createRequire(bundle), module, bundle, dirname(bundle));
  module.loaded = true;
  return { module, state };
}
