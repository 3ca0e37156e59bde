/**
 * Bundles the runner's entry point (dist/src/runner/main.js, compiled by tsc) into one CommonJS
 * file, dist/src/runner-bundle.cjs, which ProcessBackend starts when it exists. A runner is booted
 * on a caller's critical path: Node resolving, reading and compiling ~45 ES modules of ours plus
 * ws's and msgpackr's files one by one was about half of a runner's boot, one CommonJS file
 * compiles in a fraction of that and skips Node's ES module loader (which is then only loaded
 * when the app's code is imported).
 *
 * Left out of the bundle, and so loaded from node_modules as the unbundled runner would:
 * - nact: the app and the runner must share one copy (nact keeps its actor systems in a
 *   module-level map; a placed actor's factory imports the app's nact);
 * - selfsigned: only loaded by a node using `tls: 'auto'`;
 * - the optional native add-ons of ws (bufferutil, utf-8-validate) and msgpackr
 *   (msgpackr-extract), used when installed.
 *
 * The file sits in dist/src, beside app-root.js, so the `import.meta.url`-relative paths of the
 * bundled modules (app-root.js, nact-internals.js) mean what they mean unbundled.
 */
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

await build({
  absWorkingDir: root,
  entryPoints: ['dist/src/runner/main.js'],
  outfile: 'dist/src/runner-bundle.cjs',
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // Class names travel on the wire (an error's class) and name things in logs: esbuild would
  // rename a class whose name another bundled module also uses.
  keepNames: true,
  external: ['nact', 'selfsigned', 'bufferutil', 'utf-8-validate', 'msgpackr-extract'],
  define: { 'import.meta.url': '__flameBundleUrl' },
  banner: { js: '"use strict";\nconst __flameBundleUrl = require("node:url").pathToFileURL(__filename).href;' },
  logLevel: 'warning',
});
