/**
 * What `import 'flame-actors'` costs: the parser, the emulated cluster and the demo's terminal
 * library are not loaded until used, so an app (and a runner that imports the app) stays light.
 * Also the nact peer check: a second copy of nact is refused at Pool.start.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const INDEX = fileURLToPath(new URL('../../src/index.js', import.meta.url));
/** The package's entry point, as an app resolves it (the bundle the build makes). */
const PACKAGE = fileURLToPath(import.meta.resolve('flame-actors'));
const RECORDER = fileURLToPath(new URL('../fixtures/record-loads.js', import.meta.url));

/** Prints every CJS module loaded so far (the ESM ones are printed by the recorder's hooks). */
const PRINT_CJS = "for (const file of Object.keys((await import('node:module')).createRequire(import.meta.url).cache)) process.stderr.write('LOADED file://' + file + '\\n');";

function node(args: string[], cwd?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd, timeout: 30_000, env: { ...process.env, FLAME_PARENT: '' } }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
    });
  });
}

describe('Importing flame-actors', function () {
  for (const [what, entry] of [['its compiled modules', INDEX], ['its package entry point (the bundle)', PACKAGE]] as const) {
    it(`does not load the closure parser, the Kubernetes client and models, the emulated cluster nor log-update (${what})`, async function () {
      const { code, stderr } = await node(['--import', RECORDER, '--input-type=module', '-e', `await import(${JSON.stringify(entry)}); ${PRINT_CJS}`]);
      expect(code, stderr).to.equal(0);
      const loaded = stderr.split('\n').filter((l) => l.startsWith('LOADED ')).map((l) => l.slice('LOADED '.length));
      expect(loaded.some((url) => url.endsWith(entry)), 'the recorder sees ESM imports').to.equal(true);
      expect(loaded.some((url) => url.includes('node_modules/nact/')), 'the recorder sees CJS modules').to.equal(true);
      const heavy = loaded.filter((url) => /node_modules\/(acorn|acorn-walk|log-update|selfsigned|@kubernetes\/client-node|kubernetes-models|@kubernetes-models\/[^/]+)\/|\/dist\/src\/testing\/|\/dist\/src\/bundle\/testing/.test(url));
      expect(heavy).to.deep.equal([]);
    });
  }

  it('loads the parser on the first closure shipped', async function () {
    const script = `const { Pool } = await import(${JSON.stringify(INDEX)}); const { shipFunction } = await import(${JSON.stringify(INDEX.replace(/index\.js$/, 'flame/fn-ref.js'))}); shipFunction((a) => a + 1); ${PRINT_CJS}`;
    const { code, stderr } = await node(['--import', RECORDER, '--input-type=module', '-e', script]);
    expect(code, stderr).to.equal(0);
    expect(stderr).to.match(/LOADED .*node_modules\/acorn\//);
  });
});

describe('nact as a peer dependency', function () {
  let dir: string;
  before(function () {
    dir = mkdtempSync(join(tmpdir(), 'flame-nact-'));
    mkdirSync(join(dir, 'node_modules', 'nact'), { recursive: true });
    writeFileSync(join(dir, 'node_modules', 'nact', 'package.json'), JSON.stringify({ name: 'nact', version: '6.0.0', main: 'index.js' }));
    writeFileSync(join(dir, 'node_modules', 'nact', 'index.js'), 'module.exports = {};\n');
    for (const [app, entry] of [['app.mjs', INDEX], ['app-package.mjs', PACKAGE]]) writeFileSync(join(dir, app), `
const { Pool, isFlameError } = await import(${JSON.stringify(entry)});
try {
  await Pool.start({ name: 'two-nacts', max: 1 });
  console.log('started');
} catch (error) {
  console.log(error.code, error.message);
}
`);
  });
  after(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  for (const [what, app] of [['its compiled modules', 'app.mjs'], ['its package entry point (the bundle)', 'app-package.mjs']] as const) {
    it(`refuses Pool.start when the app has another copy of nact, naming both and the fix (${what})`, async function () {
      const { stdout, stderr } = await node([join(dir, app)], dir);
      expect(stdout, stderr).to.match(/^FLAME_ERR_DEPENDENCY_MISMATCH two copies of nact: the app's \(6\.0\.0, .*flame-nact-\w+\/node_modules\/nact\) and flame-actors' \(7\.6\.2, /);
      expect(stdout).to.include('npm install nact@"^7.6.2"');
    });
  }
});
