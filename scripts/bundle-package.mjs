/**
 * Bundles the package's entry points (dist/src/index.js and dist/src/testing/index.js, compiled
 * by tsc) into dist/src/bundle/, which `import 'flame-actors'` and `import 'flame-actors/testing'`
 * load (package.json "exports"; the types stay tsc's .d.ts files):
 * - flame-actors.cjs: the whole library in one CommonJS file, and index.js, an ES module listing
 *   its exports, which runs it: in a runner process (FLAME_PARENT set: an app that is its own
 *   runner, FLAME's usual shape and every Kubernetes runner pod) compiled with a V8 code cache
 *   (src/code-cache.cts, as the runner bundle's starter), elsewhere `require()`d as is.
 * - testing.js: the emulated cluster, as ES modules (not on an app's start-up path).
 * Unbundled, `import 'flame-actors'` made Node resolve, read and compile some 70 ES modules of
 * ours, then ws, msgpackr and nact through the ES module loader, which parses every CommonJS file
 * it is handed for its export names and, for files of a package without "type", for their syntax
 * too: most of an app's start-up cost of the library, and of every runner that is the app.
 *
 * What the bundle does differently from the files it is made of:
 * - ws and msgpackr are in it (loaded as CommonJS, without the ES loader's parsing), msgpackr's
 *   native string extractor is loaded once 1,000 messages were decoded, nact's `assert` checks
 *   load node:assert only to fail, and nact is in it and shared with the app through
 *   `require.cache`, as in the runner bundle (scripts/bundle-runner.mjs); when the app has another
 *   nact version, or loaded nact before flame-actors, the bundle uses that installed nact
 *   instead (a peer dependency: one copy, the app's).
 * - Every other package stays outside, loaded from node_modules where the code loads it; in the
 *   CommonJS body the Kubernetes client and kubernetes-models, which the Kubernetes backend's
 *   runtime imports, are required when first used (see BODY_EDITS and LATE below).
 * - One copy of each module of ours: the two entry points share none today; were they to, the
 *   test reading bundle.json's `outputs` fails (the shared modules then belong in the body only).
 * - `import.meta.url` of each bundled module is its compiled file's URL (dist/src/...), so the
 *   paths it resolves relative to itself mean what they mean unbundled.
 * - Names are not kept; the build fails if a class of ours would be renamed (see
 *   checkClassNames), and esbuild's `var X = class _X` keeps `X` as its name.
 *
 * The bundle is made by `npm run build` (tsc, then this). It records the compiled files it was
 * made of (dist/src/bundle/bundle.json); a test checks it was made of the current ones.
 */
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { join, relative } from 'node:path';
import { bundlePlugin, checkClassNames, root, sourcesRecord } from './bundle-parts.mjs';

const OUT_DIR = 'dist/src/bundle';
const outDir = join(root, OUT_DIR);
/** Packages bundled in (loaded as CommonJS from the bundle, not through the ES module loader). */
const BUNDLED = /^(ws|msgpackr|nact)(\/|$)/;
/** A compiled file of ours. */
const OUR_FILE = /[\\/]dist[\\/]src[\\/].*\.js$/;

/**
 * In our modules, what the CommonJS body must do otherwise (each replacement must find its text:
 * the build fails when the source changed under it):
 * - a dynamic import of a module of ours becomes a static one (esbuild would otherwise wrap that
 *   module and every module it imports, errors.js included, in lazy initialisers);
 * - `import()` of a specifier goes through the process-wide slot (src/dynamic-import.ts): on
 *   Node 20 a function restored from a code cache loses its script's dynamic import.
 */
const BODY_EDITS = {
  'backends/kubernetes/backend.js': [["await import('./runner-pods.js')", '__flameRunnerPods', "import * as __flameRunnerPods from './runner-pods.js';\n"]],
  'cluster/options.js': [['(specifier) => import(specifier)', '(specifier) => __flameImport(specifier)']],
  'observability/metrics.js': [["await import('@opentelemetry/api')", "await __flameImport('@opentelemetry/api')"]],
};
/** Packages our modules import statically that the body requires only when first used (the Kubernetes client's side). */
const LATE = /^(@kubernetes\/client-node|kubernetes-models)(\/|$)/;

/**
 * - `nact` imported by our modules: the bundled copy, or the installed one when share-nact says
 *   so (see shareNactSource).
 * - Every other package external (in the body, the Kubernetes client and models required when
 *   first used).
 * - `import.meta.url` in our modules: the URL of the compiled file the module was bundled from.
 */
function packagePlugin(body) {
  return {
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
      if (body) {
        b.onResolve({ filter: LATE }, (args) => (args.namespace === 'file' && OUR_FILE.test(args.importer) ? { path: args.path, namespace: 'flame-late' } : undefined));
        b.onResolve({ filter: /.*/, namespace: 'flame-late' }, (args) => ({ path: args.path, external: true }));
        // The package's exports, read on first use: `require()` of it then. esbuild reads an
        // imported name at each use (`import_client_node.KubeConfig`), not at import, from an
        // object it makes with this module's prototype (__toESM): the prototype reads them too.
        b.onLoad({ filter: /.*/, namespace: 'flame-late' }, (args) => ({
          contents: [
            'let loaded;',
            `const load = () => (loaded ??= require(${JSON.stringify(args.path)}));`,
            'const reads = { get: (_, key) => load()[key], has: (_, key) => key in load() };',
            'const prototype = new Proxy({}, reads);',
            'module.exports = new Proxy({}, { ...reads, getPrototypeOf: () => prototype });',
            '',
          ].join('\n'),
          loader: 'js',
        }));
      }
      // Packages our modules import, but those bundled; what a bundled package imports is bundled.
      b.onResolve({ filter: /^[^./]/ }, (args) => {
        if (args.namespace !== 'file' || !OUR_FILE.test(args.importer) || args.path.startsWith('node:') || BUNDLED.test(args.path)) return undefined;
        return { path: args.path, external: true };
      });
      b.onLoad({ filter: OUR_FILE }, (args) => {
        let contents = readFileSync(args.path, 'utf8');
        const file = relative(join(root, 'dist/src'), args.path).split('\\').join('/');
        if (body) {
          for (const [from, to, prepend = ''] of BODY_EDITS[file] ?? []) {
            if (!contents.includes(from)) throw new Error(`bundle-package: ${file} no longer has ${from}: update BODY_EDITS`);
            contents = prepend + contents.replaceAll(from, to);
          }
        }
        const own = JSON.stringify(relative(outDir, args.path).split('\\').join('/'));
        return { contents: contents.replaceAll('import.meta.url', `new URL(${own}, ${body ? '__flameBundleUrl' : 'import.meta.url'}).href`), loader: 'js' };
      });
    },
  };
}

/**
 * esbuild declares a class that names itself inside its body as `var Pool = class _Pool ...`: its
 * name would be `_Pool` (seen in logs and inspection). Ours get their own name back.
 */
function restoreClassNames(file) {
  const text = readFileSync(join(root, file), 'utf8');
  const renamed = [...text.matchAll(/^var (\w+) = class _\1\b/gm)].map(([, name]) => name);
  if (renamed.length > 0) writeFileSync(join(root, file), `${text}${renamed.map((name) => `Object.defineProperty(${name}, "name", { value: ${JSON.stringify(name)} });\n`).join('')}`);
}

/** Which compiled files of ours each output file holds (one copy of each module: tests check it). */
function holds(result) {
  return Object.fromEntries(Object.entries(result.metafile.outputs).map(([file, { inputs }]) => [
    relative(outDir, join(root, file)).split('\\').join('/'),
    Object.keys(inputs).filter((input) => input.startsWith('dist/src/')).map((input) => relative(outDir, join(root, input)).split('\\').join('/')).sort(),
  ]));
}

rmSync(outDir, { recursive: true, force: true });
const common = { absWorkingDir: root, bundle: true, platform: 'node', target: 'node20', metafile: true, logLevel: 'warning' };
/** flame-actors: one CommonJS file, which index.js (below) runs. */
const BODY = join(outDir, 'flame-actors.cjs');
const main = await build({
  ...common,
  entryPoints: ['dist/src/index.js'],
  outfile: BODY,
  format: 'cjs',
  banner: {
    js: [
      '"use strict";',
      'const __flameBundleUrl = require("node:url").pathToFileURL(__filename).href;',
      // The slot index.js fills; a body required some other way has its own import() (not cached).
      'const __flameImport = (specifier) => (globalThis[Symbol.for("flame-actors.dynamicImport")] ?? ((s) => import(s)))(specifier);',
    ].join('\n'),
  },
  plugins: [packagePlugin(true), bundlePlugin('use-installed')],
});
/** flame-actors/testing: ES modules (not on an app's start-up path), chunks for what it loads late. */
const testing = await build({
  ...common,
  entryPoints: { testing: 'dist/src/testing/index.js' },
  outdir: OUT_DIR,
  splitting: true,
  chunkNames: 'testing-[hash]',
  format: 'esm',
  // Bundled CommonJS calls require(): the chunk's own, for its file.
  banner: { js: 'import { createRequire as __flameCreateRequire } from "node:module";\nconst require = __flameCreateRequire(import.meta.url);' },
  plugins: [packagePlugin(false), bundlePlugin('use-installed')],
});
for (const result of [main, testing]) {
  const outputs = Object.keys(result.metafile.outputs);
  for (const file of outputs) restoreClassNames(file);
  checkClassNames(result, outputs.map((file) => readFileSync(join(root, file), 'utf8')).join('\n'), 'package bundle');
}
const bodyText = readFileSync(BODY, 'utf8');
for (const late of ['@kubernetes/client-node', 'kubernetes-models']) {
  if (bodyText.split('\n').some((line) => line.includes(`require("${late}`) && !line.includes('loaded ??= require('))) throw new Error(`bundle-package: ${late} is required at load`);
}
const hash = createHash('sha256').update(bodyText).digest('hex').slice(0, 16);
/** The body's export names, listed for the ES module loader. */
const names = Object.keys(await import(pathToFileURL(join(root, 'dist/src/index.js')).href));
writeFileSync(join(outDir, 'index.js'), `/**
 * flame-actors (made by scripts/bundle-package.mjs): runs flame-actors.cjs, in a runner process
 * (FLAME_PARENT set: an app that is its own runner) with a V8 code cache (src/code-cache.cts).
 */
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const DYNAMIC_IMPORT = Symbol.for('flame-actors.dynamicImport');
globalThis[DYNAMIC_IMPORT] ??= (specifier) => import(specifier);
const BODY = require.resolve('./flame-actors.cjs');
let m;
if (process.env.FLAME_PARENT) {
  const { module, state } = require('../code-cache.cjs').runCached(BODY, ${JSON.stringify(hash)});
  globalThis[Symbol.for('flame-actors.packageCodeCache')] = state;
  m = module.exports;
} else {
  m = require(BODY);
}
export const { ${names.join(', ')} } = m;
`);
const record = sourcesRecord(main, outDir);
writeFileSync(join(outDir, 'bundle.json'), `${JSON.stringify({ hash, ...record, outputs: { ...holds(main), ...holds(testing) } }, null, 1)}\n`);
