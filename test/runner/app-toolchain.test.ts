/**
 * Runners load the app's code as the app does: the parent's loader flags (tsx), closures
 * compiled by esbuild, bare specifiers from the app's root whatever the runner's working
 * directory, module detection as in the parent, and none of our warnings on the app's stderr.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ProcessBackend } from '../../src/backends/process/backend.js';
import { loaderFlags } from '../../src/backends/process/exec-argv.js';
import { moduleRef } from '../../src/flame/fn-ref.js';
import { appRoot } from '../../src/app-root.js';
import { FunctionLoader } from '../../src/runner/fn-loader.js';
import { ModuleRefError } from '../../src/errors.js';
import { startNode } from '../../src/cluster/node.js';
import { startPool } from '../helpers/pools.js';

const INDEX = new URL('../../src/index.js', import.meta.url).href;
const TSX = fileURLToPath(new URL('../../../node_modules/.bin/tsx', import.meta.url));

/** A throwaway app folder: a package of its own in node_modules, and the files given. */
function makeApp(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'flame-app-'));
  mkdirSync(join(dir, 'node_modules', 'flame-test-greeting'), { recursive: true });
  writeFileSync(join(dir, 'node_modules', 'flame-test-greeting', 'package.json'), JSON.stringify({ name: 'flame-test-greeting', version: '1.0.0', main: 'index.js' }));
  writeFileSync(join(dir, 'node_modules', 'flame-test-greeting', 'index.js'), 'exports.greet = (name) => `hello ${name}`;\n');
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

describe('Runners and the app\'s toolchain', function () {
  const dirs: string[] = [];
  afterEach(function () {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('keeps the parent\'s loader flags for the runner command, in order, with their values', function () {
    expect(loaderFlags([
      '--require', '/x/tsx/preflight.cjs', '--import', 'file:///x/tsx/loader.mjs', '--max-old-space-size=100', '--inspect',
      '--experimental-strip-types', '--no-experimental-detect-module', '--conditions=dev', '-C', 'custom', '--loader', 'ts-node/esm', '--enable-source-maps',
    ])).to.deep.equal([
      '--require', '/x/tsx/preflight.cjs', '--import', 'file:///x/tsx/loader.mjs',
      '--experimental-strip-types', '--no-experimental-detect-module', '--conditions=dev', '-C', 'custom', '--loader', 'ts-node/esm', '--enable-source-maps',
    ]);
    expect(loaderFlags([])).to.deep.equal([]);
  });

  it('runs a TypeScript app under tsx: .ts moduleRefs, esbuild-compiled closures, bare imports from the app root with the runner in /, no warnings', async function () {
    const dir = makeApp({
      'package.json': JSON.stringify({ name: 'ts-app', type: 'module' }),
      'jobs.ts': 'export function shout(text: string): string { const upper = (s: string): string => s.toUpperCase(); return `${upper(text)}!`; }\n',
      'app.ts': `
import { Pool, ProcessBackend, moduleRef } from ${JSON.stringify(INDEX)};
import type * as Jobs from './jobs.ts';
const pool = await Pool.start({ name: 'tsx-app', max: 1, backend: new ProcessBackend({ cwd: '/' }) });
try {
  const closure = await pool.call(async (n: number): Promise<string> => {
    const double = (x: number): number => x * 2;
    return \`\${double(n)} from \${double.name}\`;
  }, [21]);
  const shouted = await pool.call(moduleRef<typeof Jobs.shout>(new URL('./jobs.ts', import.meta.url), 'shout'), ['hi']);
  const greeting = await pool.call(async (name: string) => (await import('flame-test-greeting')).greet(name), ['ann']);
  const missing = await pool.call(async () => (await import('flame-test-no-such-package')).x).then(() => 'resolved?', (e: Error & { code?: string }) => \`\${e.code} \${e.message}\`);
  console.log(JSON.stringify({ closure, shouted, greeting, missing }));
} finally {
  await pool.stop();
}
`,
    });
    dirs.push(dir);
    const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
      execFile(TSX, [join(dir, 'app.ts')], { cwd: dir, timeout: 45_000, env: { ...process.env, NO_COLOR: '1' } }, (error, stdout, stderr) => {
        if (error) reject(new Error(`${error.message}\n${stdout}\n${stderr}`));
        else resolve({ stdout, stderr });
      });
    });
    const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, string>;
    expect(result.closure).to.equal('42 from double');
    expect(result.shouted).to.equal('HI!');
    expect(result.greeting).to.equal('hello ann');
    expect(result.missing).to.match(/^FLAME_ERR_MODULE_REF module "flame-test-no-such-package" was not found on the runner, looked up from /);
    expect(result.missing).to.include(dir);
    expect(stderr).to.equal('');
  });

  it('loads an ESM .js file of a package without "type" on a runner, as the parent does (module detection)', async function () {
    const dir = makeApp({ 'package.json': JSON.stringify({ name: 'untyped' }), 'esm-job.js': 'export function triple(n) { return n * 3; }\n' });
    dirs.push(dir);
    const pool = await startPool({ name: 'detect', max: 1, backend: new ProcessBackend({ stdio: 'ignore' }) });
    expect(await pool.call(moduleRef<(n: number) => number>(pathToFileURL(join(dir, 'esm-job.js')), 'triple'), [5])).to.equal(15);
  });

  it('resolves bare specifiers from the app root given to it, naming where it looked on failure', async function () {
    const dir = makeApp({});
    dirs.push(dir);
    const loader = new FunctionLoader({ resolveFrom: dir });
    expect(loader.root).to.equal(dir);
    expect(typeof (await loader.importModule('flame-test-greeting')).greet).to.equal('function');
    const error = await loader.importModule('flame-test-missing').then(() => undefined, (e: unknown) => e);
    expect(error).to.be.instanceOf(ModuleRefError);
    expect((error as Error).message).to.include(`"flame-test-missing" was not found on the runner, looked up from ${dir}`);
  });

  it('takes the app root from FLAME_APP_ROOT, else from the entry script\'s folder, never from flame-actors\' runner entry point', function () {
    expect(appRoot({ FLAME_APP_ROOT: '/srv/app' }, '/elsewhere/main.js')).to.equal('/srv/app');
    expect(appRoot({}, '/nonexistent/app/server.js')).to.equal('/nonexistent/app');
    expect(appRoot({}, fileURLToPath(new URL('../../src/runner/main.js', import.meta.url)))).to.equal(process.cwd());
    expect(appRoot({}, '')).to.equal(process.cwd());
  });

  it('resolves spawnRemote modules on a runner by the same rule as placeChild (from the app root), naming where it looked', async function () {
    const dir = makeApp({});
    dirs.push(dir);
    mkdirSync(join(dir, 'node_modules', 'flame-test-counter'), { recursive: true });
    symlinkSync(realpathSync(fileURLToPath(new URL('../../../node_modules/nact', import.meta.url))), join(dir, 'node_modules', 'nact'));
    writeFileSync(join(dir, 'node_modules', 'flame-test-counter', 'package.json'), JSON.stringify({ name: 'flame-test-counter', main: 'index.js' }));
    writeFileSync(join(dir, 'node_modules', 'flame-test-counter', 'index.js'),
      "const { spawn } = require('nact');\nexports.counter = (parent) => spawn(parent, (n, msg) => { if (msg && msg.sender) require('nact').dispatch(msg.sender, n); return n + 1; }, 'counter', { initialState: 0 });\n");
    const node = await startNode({ name: 'spawner@127.0.0.71', port: 0, cookie: 'spawn', log: false });
    try {
      const pool = await startPool({ name: 'spawn-remote', node, max: 1, backend: new ProcessBackend({ stdio: 'ignore', cwd: '/', env: { FLAME_APP_ROOT: dir } }) });
      await pool.call(() => 1);
      const runnerNode = pool.status().runners[0]!.node!;
      const ref = await node.spawnRemote(runnerNode, { module: 'flame-test-counter', export: 'counter' });
      expect(ref).to.have.property('name', 'counter');
      const error = await node.spawnRemote(runnerNode, { module: 'flame-test-no-counter', export: 'counter' }).then(() => undefined, (e: unknown) => e);
      expect(error).to.be.instanceOf(ModuleRefError);
      expect((error as Error).message).to.include(`"flame-test-no-counter" was not found on the runner, looked up from ${dir}`);
    } finally {
      await node.stop();
    }
  });
});
