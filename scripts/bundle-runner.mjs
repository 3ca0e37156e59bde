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
import { dirname, join } from 'node:path';
import { bundlePlugin, checkClassNames, nactVersion, root, sourcesRecord } from './bundle-parts.mjs';

const OUT = 'dist/src/runner-bundle.cjs';

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
  plugins: [bundlePlugin('exit')],
  metafile: true,
  logLevel: 'warning',
});
checkClassNames(result, readFileSync(join(root, OUT), 'utf8'), 'runner bundle');

/**
 * What the bundle carries: nact's version, and the compiled files of ours it was made of (see
 * sourcesRecord), so that ProcessBackend does not start a bundle made of other files.
 */
const { sources, inputs } = sourcesRecord(result, dirname(join(root, OUT)));
/** Names the V8 code cache runners make (src/runner/start-bundle.cts): one per bundle content. */
const hash = createHash('sha256').update(readFileSync(join(root, OUT))).digest('hex').slice(0, 16);
writeFileSync(join(root, 'dist/src/runner-bundle.json'), `${JSON.stringify({ nact: nactVersion, hash, sources, inputs }, null, 1)}\n`);
// Caches of earlier bundles are of no use any more.
for (const file of readdirSync(join(root, 'dist/src'))) {
  if (/^runner-bundle\.[0-9a-f]+\..*v8cache/.test(file) && !file.startsWith(`runner-bundle.${hash}.`)) rmSync(join(root, 'dist/src', file), { force: true });
}
