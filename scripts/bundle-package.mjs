/**
 * Bundles the package's entry points (dist/src/index.js and dist/src/testing/index.js, compiled
 * by tsc) into ES modules in dist/src/bundle/, which `import 'flame-actors'` and
 * `import 'flame-actors/testing'` load (package.json "exports"; the types stay tsc's .d.ts files).
 * Unbundled, `import 'flame-actors'` made Node resolve, read and compile some 70 ES modules of
 * ours, then ws, msgpackr and nact through the ES module loader, which parses every CommonJS file
 * it is handed for its export names and, for files of a package without "type", for their syntax
 * too: most of an app's start-up cost of the library, and of every runner that is the app's own
 * entry point (FLAME's usual shape; every Kubernetes runner pod).
 *
 * What the bundle does differently from the files it is made of:
 * - One copy of each module for both entry points: the code they share is in chunks they both
 *   import (esbuild's code splitting), so the error classes, Pool, ... are the same classes
 *   whichever entry point an app imports them from. What is loaded late (`import()` in the code:
 *   the Kubernetes client's side of KubernetesBackend) stays in a chunk of its own, loaded late.
 * - ws and msgpackr are in it (loaded as CommonJS, without the ES loader's parsing), msgpackr's
 *   native string extractor is loaded once 1,000 messages were decoded, nact's `assert` checks
 *   load node:assert only to fail, and nact is in it and shared with the app through
 *   `require.cache`, as in the runner bundle (scripts/bundle-runner.mjs); when the app has another
 *   nact version, or loaded nact before flame-actors, the bundle uses that installed nact
 *   instead (a peer dependency: one copy, the app's).
 * - Every other package stays outside (the Kubernetes client, kubernetes-models, acorn, log-update,
 *   selfsigned, ...), loaded from node_modules where the code loads it.
 * - `import.meta.url` of each bundled module is its compiled file's URL (dist/src/...), so the
 *   paths it resolves relative to itself mean what they mean unbundled.
 * - Names are not kept; the build fails if a class of ours would be renamed (see
 *   checkClassNames).
 *
 * The bundle is made by `npm run build` (tsc, then this). It records the compiled files it was
 * made of (dist/src/bundle/bundle.json); a test checks it was made of the current ones.
 */
import { build } from 'esbuild';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { bundlePlugin, checkClassNames, root, sourcesRecord } from './bundle-parts.mjs';

const OUT_DIR = 'dist/src/bundle';
const outDir = join(root, OUT_DIR);
/** Packages bundled in (loaded as CommonJS from the bundle, not through the ES module loader). */
const BUNDLED = /^(ws|msgpackr|nact)(\/|$)/;
/** A compiled file of ours. */
const OUR_FILE = /[\\/]dist[\\/]src[\\/].*\.js$/;

/**
 * - `nact` imported by our modules: the bundled copy, or the installed one when share-nact says
 *   so (see shareNactSource).
 * - Every other package external.
 * - `import.meta.url` in our modules: the URL of the compiled file the module was bundled from.
 */
const packagePlugin = {
  name: 'flame-package',
  setup(b) {
    b.onResolve({ filter: /^nact$/ }, (args) => {
      if (args.namespace === 'flame' && args.pluginData === 'installed') return { path: 'nact', external: true };
      if (args.namespace === 'flame' && args.pluginData === 'bundled') return undefined;
      return { path: 'nact-choice', namespace: 'flame' };
    });
    b.onLoad({ filter: /^nact-choice$/, namespace: 'flame' }, () => ({
      contents: "module.exports = require('flame:share-nact').useInstalled ? require('flame:nact-installed') : require('flame:nact-bundled');\n",
      resolveDir: root,
      loader: 'js',
    }));
    b.onResolve({ filter: /^flame:nact-(installed|bundled)$/ }, async (args) => {
      if (args.path === 'flame:nact-installed') return { path: 'nact', external: true };
      return b.resolve('nact', { kind: 'require-call', resolveDir: root, pluginData: 'bundled', namespace: 'flame' });
    });
    // Packages our modules import, but those bundled; what a bundled package imports is bundled.
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.namespace !== 'file' || !OUR_FILE.test(args.importer) || args.path.startsWith('node:') || BUNDLED.test(args.path)) return undefined;
      return { path: args.path, external: true };
    });
    b.onLoad({ filter: OUR_FILE }, (args) => {
      const contents = readFileSync(args.path, 'utf8');
      if (!contents.includes('import.meta.url')) return undefined;
      const own = JSON.stringify(relative(outDir, args.path).split('\\').join('/'));
      return { contents: contents.replaceAll('import.meta.url', `new URL(${own}, import.meta.url).href`), loader: 'js' };
    });
  },
};

rmSync(outDir, { recursive: true, force: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: { index: 'dist/src/index.js', testing: 'dist/src/testing/index.js' },
  outdir: OUT_DIR,
  splitting: true,
  chunkNames: 'chunk-[hash]',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // Bundled CommonJS (ws, msgpackr, nact) calls require(): the chunk's own, for its file.
  banner: { js: 'import { createRequire as __flameCreateRequire } from "node:module";\nconst require = __flameCreateRequire(import.meta.url);' },
  plugins: [packagePlugin, bundlePlugin('use-installed')],
  metafile: true,
  logLevel: 'warning',
});
const outputs = Object.keys(result.metafile.outputs);
// esbuild declares a class that names itself inside its body as `var Pool = class _Pool ...`: its
// name would be `_Pool` (seen in logs and inspection). Ours get their own name back.
for (const file of outputs) {
  const text = readFileSync(join(root, file), 'utf8');
  const renamed = [...text.matchAll(/^var (\w+) = class _\1\b/gm)].map(([, name]) => name);
  if (renamed.length > 0) writeFileSync(join(root, file), `${text}${renamed.map((name) => `Object.defineProperty(${name}, "name", { value: ${JSON.stringify(name)} });\n`).join('')}`);
}
checkClassNames(result, outputs.map((file) => readFileSync(join(root, file), 'utf8')).join('\n'), 'package bundle');
/** Which compiled files of ours each output file holds (one copy of each module: tests check it). */
const holds = Object.fromEntries(Object.entries(result.metafile.outputs).map(([file, { inputs }]) => [
  relative(outDir, join(root, file)).split('\\').join('/'),
  Object.keys(inputs).filter((input) => input.startsWith('dist/src/')).map((input) => relative(outDir, join(root, input)).split('\\').join('/')).sort(),
]));
writeFileSync(join(outDir, 'bundle.json'), `${JSON.stringify({ ...sourcesRecord(result, outDir), outputs: holds }, null, 1)}\n`);
