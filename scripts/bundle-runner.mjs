/**
 * Bundles the runner's entry point (dist/src/runner/main.js, compiled by tsc) into one CommonJS
 * file, dist/src/runner-bundle.cjs, which ProcessBackend starts (through
 * dist/src/runner/start-bundle.cjs and a V8 code cache) when it is usable (see runnerEntry() in
 * src/backends/process/runner-entry.ts). A runner boots on a caller's critical path, and Node
 * resolving, reading and compiling ~60 ES and CommonJS files one by one was about half of it.
 *
 * What the bundle does differently from the files it is made of:
 * - nact is in it, and registered in Node's `require.cache` under the paths of the nact that
 *   `require('nact')` finds from here, before anything runs: the app's own `import 'nact'` (a
 *   placed actor's factory) then gets this very copy, as the app and the library must share one
 *   (nact keeps its actor systems in a module-level map). The build records the version bundled
 *   in runner-bundle.json; the bundle refuses to start beside another version, and ProcessBackend
 *   starts the unbundled entry point then.
 * - msgpackr's optional native string extractor (msgpackr-extract) is loaded once the runner has
 *   decoded 1,000 messages, not at boot: finding it (node-gyp-build scanning for the prebuilt
 *   binary) cost ~6 ms of boot and made Node's path code hot enough for V8 to optimise it, ~4 MB
 *   of an idle runner's memory; a busy runner still gets it (on call frames that carried
 *   strings, a call without it cost the runner ~9% more CPU).
 * - Names are not kept (esbuild's keepNames wraps every named function expression in a call,
 *   also those made on every call: 5.4 against 4.4 us of runner CPU per call in one run); the build fails instead if a
 *   class of ours would be renamed (class names travel on the wire with errors).
 * - Left out, loaded from node_modules when used: selfsigned (only for `tls: 'auto'`) and ws's
 *   optional native add-ons (bufferutil, utf-8-validate).
 *
 * The file sits in dist/src, beside app-root.js, so the `import.meta.url`-relative paths of the
 * bundled modules mean what they mean unbundled.
 */
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const OUT = 'dist/src/runner-bundle.cjs';

const nactDir = dirname(createRequire(join(root, 'dist/src/runner-bundle.cjs')).resolve('nact/package.json'));
const nactVersion = JSON.parse(readFileSync(join(nactDir, 'package.json'), 'utf8')).version;
/** Every file of nact's lib/, relative to its package folder. */
const nactFiles = [];
(function walk(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) walk(join(dir, entry.name));
    else if (entry.name.endsWith('.js')) nactFiles.push(relative(nactDir, join(dir, entry.name)).split('\\').join('/'));
  }
})(join(nactDir, 'lib'));
nactFiles.sort();

/** Runs first: checks the nact beside the bundle is the one bundled, and shares the bundled copy. */
const shareNact = `
const Module = require('node:module');
const { dirname, join } = require('node:path');
const { readFileSync } = require('node:fs');
const BUNDLED = ${JSON.stringify(nactVersion)};
let dir;
try {
  dir = dirname(require.resolve('nact/package.json'));
} catch {
  // no nact beside the bundle: nothing to share with, the bundled copy is the only one
}
if (dir !== undefined) {
  const version = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).version;
  if (version !== BUNDLED) {
    process.stderr.write('flame runner: this runner bundle carries nact ' + BUNDLED + ' but the app has nact ' + version + ' (' + dir + '): rebuild flame-actors, or start dist/src/runner/main.js\\n');
    process.exit(1);
  }
}
function share(file, exports) {
  if (dir === undefined) return;
  const filename = join(dir, file);
  if (require.cache[filename] !== undefined) return;
  const m = new Module(filename, null);
  m.filename = filename;
  m.paths = Module._nodeModulePaths(dirname(filename));
  m.exports = exports;
  m.loaded = true;
  require.cache[filename] = m;
}
${nactFiles.map((f) => `share(${JSON.stringify(f)}, require(${JSON.stringify(`nact/${f}`)}));`).join('\n')}
`;

/**
 * What msgpackr gets as msgpackr-extract: until LATE_AFTER messages were decoded it refuses (a
 * thrown sentinel, which msgpackr takes as "read this message's strings in JavaScript"), then it
 * loads the real one, or keeps refusing when it is not installed.
 */
const lateExtractor = `
const LATE_AFTER = 1000;
const NOT_YET = Object.freeze({ notYet: true });
let native;
let decoded = 0;
module.exports = {
  extractStrings(position, end, buffer) {
    if (native === undefined) {
      if (++decoded < LATE_AFTER) throw NOT_YET;
      try {
        native = require('msgpackr-extract').extractStrings;
      } catch {
        native = null;
      }
    }
    if (native === null) throw NOT_YET;
    return native(position, end, buffer);
  },
};
`;

/** node:assert's `assert(value, message)` as nact calls it, loading node:assert only to fail. */
const lateAssert = `
module.exports = function assert(value, ...rest) {
  if (!value) require('node:assert')(value, ...rest);
};
`;

const virtual = {
  name: 'flame-runner-virtual',
  setup(b) {
    b.onResolve({ filter: /^flame:share-nact$/ }, () => ({ path: 'share-nact', namespace: 'flame' }));
    // nact's `assert(condition)` checks, without loading node:assert (~3 ms of boot) until one fails.
    b.onResolve({ filter: /^assert$/ }, (args) => (args.path === 'assert' && /[\\/]nact[\\/]/.test(args.importer) ? { path: 'late-assert', namespace: 'flame' } : undefined));
    b.onLoad({ filter: /^late-assert$/, namespace: 'flame' }, () => ({ contents: lateAssert, loader: 'js' }));
    // Only msgpackr's own import of it; the late extractor's require of the real one stays external.
    b.onResolve({ filter: /^msgpackr-extract$/ }, (args) => (args.namespace === 'flame' ? { path: 'msgpackr-extract', external: true } : { path: 'no-msgpackr-extract', namespace: 'flame' }));
    b.onLoad({ filter: /^share-nact$/, namespace: 'flame' }, () => ({ contents: shareNact, resolveDir: root, loader: 'js' }));
    b.onLoad({ filter: /^no-msgpackr-extract$/, namespace: 'flame' }, () => ({ contents: lateExtractor, resolveDir: root, loader: 'js' }));
  },
};

const result = await build({
  absWorkingDir: root,
  // ES imports, not require(): esbuild then joins the modules into one scope in order, where
  // require() would wrap each in a lazy initialiser (`__esm`) whose bindings are assigned when it
  // first runs, an indirection on every access from the call path.
  stdin: { contents: "import 'flame:share-nact';\nimport './dist/src/runner/main.js';\n", resolveDir: root, sourcefile: 'runner-bundle-entry.mjs', loader: 'js' },
  outfile: OUT,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: ['selfsigned', 'bufferutil', 'utf-8-validate'],
  define: { 'import.meta.url': '__flameBundleUrl' },
  banner: { js: '"use strict";\nconst __flameBundleUrl = require("node:url").pathToFileURL(__filename).href;' },
  plugins: [virtual],
  metafile: true,
  logLevel: 'warning',
});
// Class names travel on the wire (an error's class, by its constructor's name) and name things in
// logs: esbuild renames a top-level name that two bundled modules share, and it must not be one
// of our classes.
const bundled = readFileSync(join(root, OUT), 'utf8');
for (const file of Object.keys(result.metafile.inputs).filter((f) => f.startsWith('dist/src/'))) {
  for (const [, name] of readFileSync(join(root, file), 'utf8').matchAll(/^(?:export )?class (\w+)/gm)) {
    if (!new RegExp(`^var ${name} = class( |\\{)|^class ${name}( |\\{)`, 'm').test(bundled)) {
      throw new Error(`the runner bundle renamed class ${name} of ${file}: rename it in the source (its name is used at run time)`);
    }
  }
}

/**
 * What the bundle carries: nact's version, and the compiled files of ours it was made of
 * (relative to it, shipped beside it) with a hash of their contents, so that a bundle made of
 * other files (`tsc` run alone after an edit) is not started. By content, not modification
 * times: npm does not keep those in order when it installs a package. Dependencies are not
 * listed: installed, they live elsewhere.
 */
const inputFiles = Object.keys(result.metafile.inputs).filter((file) => file.startsWith('dist/src/')).sort();
const inputs = inputFiles.map((file) => relative(dirname(join(root, OUT)), join(root, file)).split('\\').join('/'));
const sources = createHash('sha256');
for (const file of inputFiles) sources.update(readFileSync(join(root, file)));
/** Names the V8 code cache runners make (src/runner/start-bundle.cts): one per bundle content. */
const hash = createHash('sha256').update(readFileSync(join(root, OUT))).digest('hex').slice(0, 16);
writeFileSync(join(root, 'dist/src/runner-bundle.json'), `${JSON.stringify({ nact: nactVersion, hash, sources: sources.digest('hex'), inputs }, null, 1)}\n`);
// Caches of earlier bundles are of no use any more.
for (const file of readdirSync(join(root, 'dist/src'))) {
  if (/^runner-bundle\.[0-9a-f]+\..*v8cache/.test(file) && !file.startsWith(`runner-bundle.${hash}.`)) rmSync(join(root, 'dist/src', file), { force: true });
}
