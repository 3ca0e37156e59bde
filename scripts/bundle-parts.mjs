/**
 * What the two bundles the build makes have in common (scripts/bundle-runner.mjs: the runner's
 * entry point as one CommonJS file; scripts/bundle-package.mjs: the package's entry points as ES
 * modules): the nact they carry and how they share it, msgpackr's native extractor loaded late,
 * nact's `assert` loaded only to fail, the check that no class of ours was renamed, and the record
 * of the compiled files a bundle was made of.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('..', import.meta.url));

export const nactDir = dirname(createRequire(join(root, 'dist/src/index.js')).resolve('nact/package.json'));
export const nactVersion = JSON.parse(readFileSync(join(nactDir, 'package.json'), 'utf8')).version;
/** Every file of nact's lib/, relative to its package folder. */
export const nactFiles = [];
(function walk(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) walk(join(dir, entry.name));
    else if (entry.name.endsWith('.js')) nactFiles.push(relative(nactDir, join(dir, entry.name)).split('\\').join('/'));
  }
})(join(nactDir, 'lib'));
nactFiles.sort();

/**
 * Runs first in a bundle that carries nact: registers the bundled copy in Node's `require.cache`
 * under the paths of the nact that `require('nact')` finds from the bundle, so the app's own
 * `import 'nact'` gets this very copy (the app and the library must share one: nact keeps its
 * actor systems in a module-level map). `onOther` is what to do when the nact there is another
 * version: `'exit'` (the runner bundle: ProcessBackend then starts the unbundled entry point), or
 * `'use-installed'`, also when that nact was loaded already (the package bundle, imported by apps
 * that may have imported nact first): the bundle's `nact` is then the installed one.
 */
export function shareNactSource(onOther) {
  return `
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
${onOther === 'exit' ? '' : 'let useInstalled = false;\n'}if (dir !== undefined) {
  const version = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).version;
  ${onOther === 'exit' ? `if (version !== BUNDLED) {
    process.stderr.write('flame runner: this runner bundle carries nact ' + BUNDLED + ' but the app has nact ' + version + ' (' + dir + '): rebuild flame-actors, or start dist/src/runner/main.js\\n');
    process.exit(1);
  }` : `useInstalled = version !== BUNDLED || require.cache[join(dir, 'lib', 'index.js')] !== undefined;`}
}
// Node's lookup paths of each of nact's 3 folders, computed once: path work at boot is what makes
// V8 optimise node:path's normalizeString with TurboFan, whose code then stays resident (~4 MB).
const lookupPaths = new Map();
function share(file, exports) {
  if (dir === undefined) return;
  const filename = join(dir, file);
  if (require.cache[filename] !== undefined) return;
  const m = new Module(filename, null);
  m.filename = filename;
  const folder = dirname(filename);
  if (!lookupPaths.has(folder)) lookupPaths.set(folder, Module._nodeModulePaths(folder));
  m.paths = lookupPaths.get(folder).slice();
  m.exports = exports;
  m.loaded = true;
  require.cache[filename] = m;
}
${onOther === 'exit' ? '' : 'if (!useInstalled) {\n'}${nactFiles.map((f) => `share(${JSON.stringify(f)}, require(${JSON.stringify(`nact/${f}`)}));`).join('\n')}
${onOther === 'exit' ? '' : '}\nmodule.exports = { useInstalled };\n'}`;
}

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

/**
 * esbuild plugin: `flame:share-nact` (see {@link shareNactSource}), nact's `assert` loaded late,
 * and msgpackr's import of msgpackr-extract answered by the late extractor.
 */
export function bundlePlugin(onOther) {
  return {
    name: 'flame-bundle-virtual',
    setup(b) {
      b.onResolve({ filter: /^flame:share-nact$/ }, () => ({ path: 'share-nact', namespace: 'flame' }));
      // nact's `assert(condition)` checks, without loading node:assert (~3 ms of boot) until one fails.
      b.onResolve({ filter: /^assert$/ }, (args) => (args.path === 'assert' && /[\\/]nact[\\/]/.test(args.importer) ? { path: 'late-assert', namespace: 'flame' } : undefined));
      b.onLoad({ filter: /^late-assert$/, namespace: 'flame' }, () => ({ contents: lateAssert, loader: 'js' }));
      // Only msgpackr's own import of it; the late extractor's require of the real one stays external.
      b.onResolve({ filter: /^msgpackr-extract$/ }, (args) => (args.namespace === 'flame' ? { path: 'msgpackr-extract', external: true } : { path: 'no-msgpackr-extract', namespace: 'flame' }));
      b.onLoad({ filter: /^share-nact$/, namespace: 'flame' }, () => ({ contents: shareNactSource(onOther), resolveDir: root, loader: 'js' }));
      b.onLoad({ filter: /^no-msgpackr-extract$/, namespace: 'flame' }, () => ({ contents: lateExtractor, resolveDir: root, loader: 'js' }));
    },
  };
}

/** The compiled files of ours (dist/src/...) a build result was made of, sorted. */
export function ourInputs(result) {
  return Object.keys(result.metafile.inputs).filter((file) => file.startsWith('dist/src/')).sort();
}

/**
 * Class names travel on the wire (an error's class, by its constructor's name) and name things in
 * logs: esbuild renames a top-level name that two bundled modules share, and it must not be one
 * of our classes. `bundled` is the text of every output file.
 */
export function checkClassNames(result, bundled, what) {
  for (const file of ourInputs(result)) {
    for (const [, name] of readFileSync(join(root, file), 'utf8').matchAll(/^(?:export )?class (\w+)/gm)) {
      // Renamed: kept under a numbered name (a class left out as unused is no problem).
      if (new RegExp(`^var ${name}\\d+ = class( |\\{)|^class ${name}\\d+( |\\{)`, 'm').test(bundled)) {
        throw new Error(`the ${what} renamed class ${name} of ${file}: rename it in the source (its name is used at run time)`);
      }
    }
  }
}

/**
 * What a bundle was made of: the compiled files of ours, relative to `fromDir` (shipped beside
 * it), and a hash of their contents, so that a bundle made of other files (`tsc` run alone after
 * an edit) is told apart. By content, not modification times: npm does not keep those in order
 * when it installs a package. Dependencies are not listed: installed, they live elsewhere.
 */
export function sourcesRecord(result, fromDir) {
  const files = ourInputs(result);
  const sources = createHash('sha256');
  for (const file of files) sources.update(readFileSync(join(root, file)));
  return { sources: sources.digest('hex'), inputs: files.map((file) => relative(fromDir, join(root, file)).split('\\').join('/')) };
}
