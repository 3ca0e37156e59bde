/**
 * What ProcessBackend starts when the runner bundle is built: it runs dist/src/runner-bundle.cjs
 * as Node would, but compiled with a V8 code cache, so that the functions a runner's boot runs are
 * deserialized instead of parsed and compiled again by every runner (about 13 ms of a cold call,
 * measured). CommonJS, like the bundle, so that Node's ES module loader is not loaded for it.
 *
 * The cache is made by the first runner that finds none (or one V8 rejects: another Node, other
 * V8 flags), half a second after it started (when its boot has compiled what a boot needs) or as
 * it exits, whichever comes first. It is written beside the bundle (where the code itself is, so
 * it is trusted as the code is), through a temporary file renamed into place, and named by the
 * bundle's content hash (V8 checks a cache's version and flags but only the length of the
 * source) and the runner's Node flags. Where that folder is read-only, runners compile without a
 * cache.
 */
import { createHash } from 'node:crypto';
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import Module from 'node:module';
import { dirname, join } from 'node:path';
import vm from 'node:vm';

const BUNDLE = join(__dirname, '..', 'runner-bundle.cjs');
/** After this long a runner has usually joined its parent: the cache then holds what a boot compiles. */
const WRITE_CACHE_AFTER_MS = 500;
/** How the code cache went, for tests: 'accepted', 'rejected' (then rewritten), 'none' (then written) or 'unreadable'. */
const CODE_CACHE_STATE = Symbol.for('flame-actors.codeCache');
const DYNAMIC_IMPORT = Symbol.for('flame-actors.dynamicImport');

type Globals = { [CODE_CACHE_STATE]?: string; [DYNAMIC_IMPORT]?: (specifier: string) => Promise<unknown> };

/** The bundle's code, compiled with the cache when there is a usable one. */
function compile(): (...args: unknown[]) => unknown {
  let hash: unknown;
  try {
    hash = (JSON.parse(readFileSync(join(dirname(BUNDLE), 'runner-bundle.json'), 'utf8')) as { hash?: unknown }).hash;
  } catch {
    // no record of the bundle: no cache
  }
  // One cache per set of Node flags (V8 rejects a cache made under other V8 flags): pools whose
  // runners differ in flags do not overwrite each other's.
  const flags = createHash('sha256').update(process.execArgv.join('\0')).digest('hex').slice(0, 8);
  const cacheFile = typeof hash === 'string' && /^[0-9a-f]+$/.test(hash) ? join(dirname(BUNDLE), `runner-bundle.${hash}.${flags}.v8cache`) : undefined;
  let cachedData: Buffer | undefined;
  try {
    if (cacheFile !== undefined) cachedData = readFileSync(cacheFile);
  } catch {
    // none yet
  }
  // No importModuleDynamically: on Node 20 a function restored from the cache loses it, so the
  // bundle imports through the slot this file fills below (see src/dynamic-import.ts).
  const script = new vm.Script(Module.wrap(readFileSync(BUNDLE, 'utf8')), { filename: BUNDLE, ...(cachedData ? { cachedData } : {}) });
  const state = cachedData === undefined ? 'none' : script.cachedDataRejected === true ? 'rejected' : 'accepted';
  (globalThis as Globals)[CODE_CACHE_STATE] = cacheFile === undefined ? 'unreadable' : state;
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
        // a read-only install: runners compile without a cache
        try {
          rmSync(temporary, { force: true });
        } catch {
          // nothing was written
        }
      }
    };
    setTimeout(write, WRITE_CACHE_AFTER_MS).unref();
    process.once('exit', write); // a runner that ends sooner
  }
  return script.runInThisContext() as (...args: unknown[]) => unknown;
}

(globalThis as Globals)[DYNAMIC_IMPORT] = (specifier) => import(specifier);
// The bundle as a CommonJS module of its own file, as `node runner-bundle.cjs` would run it.
const bundle = new Module(BUNDLE);
bundle.filename = BUNDLE;
require.cache[BUNDLE] = bundle;
compile()(bundle.exports, Module.createRequire(BUNDLE), bundle, BUNDLE, dirname(BUNDLE));
bundle.loaded = true;
