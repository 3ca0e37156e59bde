/**
 * What ProcessBackend starts when the runner bundle is built: it runs dist/src/runner-bundle.cjs
 * as Node would, but compiled with a V8 code cache (see src/code-cache.cts), so that the
 * functions a runner's boot runs are deserialized instead of parsed and compiled again by every
 * runner (about 13 ms of a cold call, measured). CommonJS, like the bundle, so that Node's ES
 * module loader is not loaded for it.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { runCached } from '../code-cache.cjs';

const BUNDLE = join(__dirname, '..', 'runner-bundle.cjs');
/** How the code cache went, for tests: 'accepted', 'rejected' (then rewritten), 'none' (then written) or 'unreadable'. */
const CODE_CACHE_STATE = Symbol.for('flame-actors.codeCache');
const DYNAMIC_IMPORT = Symbol.for('flame-actors.dynamicImport');

type Globals = { [CODE_CACHE_STATE]?: string; [DYNAMIC_IMPORT]?: (specifier: string) => Promise<unknown> };

let hash: unknown;
try {
  hash = (JSON.parse(readFileSync(join(dirname(BUNDLE), 'runner-bundle.json'), 'utf8')) as { hash?: unknown }).hash;
} catch {
  // no record of the bundle: no cache
}
(globalThis as Globals)[DYNAMIC_IMPORT] = (specifier) => import(specifier);
(globalThis as Globals)[CODE_CACHE_STATE] = runCached(BUNDLE, hash).state;
