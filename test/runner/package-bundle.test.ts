/**
 * The package's bundled entry points (dist/src/bundle/, made by `npm run build`): what an app's
 * `import 'flame-actors'` resolves to and loads, one copy of each module of ours for both entry
 * points, nact shared with the app whichever is imported first, and an app that is its own
 * runner loading the bundle and nothing of the library beside it.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ProcessBackend } from '../../src/backends/process/backend.js';
import { moduleRef } from '../../src/flame/fn-ref.js';
import { startPool } from '../helpers/pools.js';
import type * as Jobs from '../fixtures/jobs.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BUNDLE_DIR = join(ROOT, 'dist', 'src', 'bundle');
const APP = join(ROOT, 'dist', 'examples', 'app-as-runner.js');
const RECORDER = fileURLToPath(new URL('../fixtures/import-recorder.js', import.meta.url));
const CODE_CACHE = join(ROOT, 'dist', 'src', 'code-cache.cjs');
const JOBS = new URL('../fixtures/jobs.js', import.meta.url);

interface BundleRecord {
  sources: string;
  inputs: string[];
  outputs: Record<string, string[]>;
}

function record(): BundleRecord {
  return JSON.parse(readFileSync(join(BUNDLE_DIR, 'bundle.json'), 'utf8')) as BundleRecord;
}

function node(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd, timeout: 30_000, env: { ...process.env, FLAME_PARENT: '', ...env } }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

/** Lists every CommonJS file in Node's module cache (what the ES loader's recorder does not see). */
const PRINT_CJS = "process.stdout.write(JSON.stringify(Object.keys((await import('node:module')).createRequire(import.meta.url).cache)) + '\\n');";

describe('The package bundle', function () {
  this.timeout(60_000);
  let consumer: string;

  before(function () {
    // An app with flame-actors installed (linked, as `npm link` or a workspace would).
    consumer = mkdtempSync(join(tmpdir(), 'flame-consumer-'));
    writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }));
    mkdirSync(join(consumer, 'node_modules'));
    symlinkSync(ROOT, join(consumer, 'node_modules', 'flame-actors'), 'dir');
    // nact is a peer dependency: the app installs it (the same files, its real path is the same).
    symlinkSync(join(ROOT, 'node_modules', 'nact'), join(consumer, 'node_modules', 'nact'), 'dir');
  });

  after(function () {
    rmSync(consumer, { recursive: true, force: true });
  });

  let cleanup: (() => void) | undefined;
  afterEach(function () {
    cleanup?.();
    cleanup = undefined;
  });

  it('is what an app\'s import of flame-actors and flame-actors/testing resolves to', async function () {
    const { code, stdout, stderr } = await node(['--input-type=module', '-e', "console.log(import.meta.resolve('flame-actors')); console.log(import.meta.resolve('flame-actors/testing'));"], consumer);
    expect(code, stderr).to.equal(0);
    expect(stdout.trim().split('\n').map((url) => fileURLToPath(url))).to.deep.equal([join(BUNDLE_DIR, 'index.js'), join(BUNDLE_DIR, 'testing.js')]);
  });

  it('was made of the compiled files there are now (run npm run build, not tsc alone, if this fails)', function () {
    const { sources, inputs } = record();
    const hash = createHash('sha256');
    for (const input of inputs) hash.update(readFileSync(join(BUNDLE_DIR, input)));
    expect(hash.digest('hex')).to.equal(sources);
  });

  it('holds one copy of each module of ours for both entry points (errors, Pool, ... are the same classes from either)', function () {
    const { outputs } = record();
    const seen = new Map<string, string>();
    for (const [output, inputs] of Object.entries(outputs)) {
      for (const input of inputs) {
        expect(seen.get(input), `${input} is in ${seen.get(input)} and in ${output}`).to.equal(undefined);
        seen.set(input, output);
      }
    }
    expect(seen.has('../errors.js'), 'the record lists the modules').to.equal(true);
  });

  it('imported by an app loads its own two files: no module of ours outside them, no ws, msgpackr or nact file from disk, no native addon', async function () {
    const log = join(consumer, 'import.log');
    const { code, stdout, stderr } = await node(['--import', RECORDER, '--input-type=module', '-e', `const flame = await import('flame-actors'); if (typeof flame.Pool.start !== 'function') process.exit(3); ${PRINT_CJS}`], consumer, { FLAME_IMPORT_LOG: log });
    expect(code, stderr).to.equal(0);
    const ours = readFileSync(log, 'utf8').split('\n').filter((url) => url.startsWith('file:')).map((url) => fileURLToPath(url));
    expect(ours.length, 'the recorder saw the import').to.be.above(0);
    expect(ours.filter((file) => !file.startsWith(BUNDLE_DIR)), 'ES modules loaded outside the bundle').to.deep.equal([]);
    expect(ours, 'ES modules of the bundle').to.deep.equal([join(BUNDLE_DIR, 'index.js')]);
    // nact's files are in the cache as the bundled copy, registered for the app to share.
    const cjs = (JSON.parse(stdout.trim().split('\n').pop()!) as string[]).filter((file) => !/[\\/]node_modules[\\/]nact[\\/]lib[\\/]/.test(file));
    expect(cjs).to.deep.equal([join(BUNDLE_DIR, 'flame-actors.cjs')]);
  });

  for (const first of ['flame-actors', 'nact'] as const) {
    it(`shares nact with an app that imports ${first} first: an actor the app's nact spawns on a flame-actors node's system answers`, async function () {
      const imports = first === 'nact' ? "const nact = await import('nact'); const flame = await import('flame-actors');" : "const flame = await import('flame-actors'); const nact = await import('nact');";
      const script = `${imports}
const node = await flame.startNode({ name: 'share@127.0.0.1', port: 0, cookie: 'share-cookie', log: false });
try {
  const echo = nact.spawnStateless(node.system, (msg) => nact.dispatch(msg.sender, msg.value + 1), 'echo');
  console.log(await nact.query(echo, (sender) => ({ sender, value: 41 }), 5000));
} finally {
  await node.stop();
}`;
      const { code, stdout, stderr } = await node(['--input-type=module', '-e', script], consumer);
      expect(code, stderr).to.equal(0);
      expect(stdout.trim()).to.equal('42');
    });
  }

  it('an app that is its own runner loads the bundle and none of the library\'s other files: no compiled module, no closure parser, no Kubernetes client, no emulator', async function () {
    const log = join(consumer, 'runner.log');
    // The app's runners record what they resolve (ES modules) in the log; a call lists the CommonJS ones.
    const pool = await startPool({
      name: 'app-runner-loads',
      max: 1,
      backend: new ProcessBackend({ command: [process.execPath, '--import', RECORDER, APP], env: { FLAME_IMPORT_LOG: log }, stdio: 'ignore' }),
    });
    const cjs = await pool.call(async () => Object.keys((await import('node:module')).createRequire(process.argv[1]!).cache));
    const esm = readFileSync(log, 'utf8').split('\n').filter((url) => url.startsWith('file:')).map((url) => fileURLToPath(url));
    expect(esm, 'the runner ran the app').to.include(APP);
    // Beside the bundle and its starter (src/code-cache.cts), only nact's files, registered by the
    // bundle for the app to share (not read from disk): no acorn, no Kubernetes client or models.
    const library = [...esm, ...cjs].filter((file) => file.startsWith(ROOT) && file !== APP && !file.startsWith(BUNDLE_DIR) && file !== CODE_CACHE);
    expect(library.filter((file) => !/[\\/]node_modules[\\/]nact[\\/]lib[\\/]/.test(file))).to.deep.equal([]);
    // Nor the emulator.
    const emulator = Object.entries(record().outputs).filter(([, inputs]) => inputs.some((input) => input.startsWith('../testing/'))).map(([output]) => join(BUNDLE_DIR, output));
    expect(emulator.length, 'the record names it').to.be.at.least(1);
    expect(esm.filter((file) => emulator.includes(file))).to.deep.equal([]);
  });

  it('an app that is its own runner boots from a V8 code cache its first runner made', async function () {
    const caches = () => readdirSync(BUNDLE_DIR).filter((file) => file.endsWith('.v8cache'));
    const before = new Set(caches());
    // Flags of their own: no cache for them yet; the first runner writes it (500 ms after its start, or as it exits).
    const command = [process.execPath, `--max-old-space-size=${300 + Math.floor(Math.random() * 1000)}`, APP];
    cleanup = () => {
      for (const file of caches()) if (!before.has(file)) rmSync(join(BUNDLE_DIR, file), { force: true });
    };
    const state = () => (globalThis as Record<symbol, unknown>)[Symbol.for('flame-actors.packageCodeCache')];
    const first = await startPool({ name: 'app-cache-maker', max: 1, backend: new ProcessBackend({ command, stdio: 'ignore' }) });
    expect(await first.call(state)).to.equal('none');
    await first.stop();
    const second = await startPool({ name: 'app-cache-user', max: 1, backend: new ProcessBackend({ command, stdio: 'ignore' }) });
    expect(await second.call(state)).to.equal('accepted');
    // Computed import()s of the library go through the starter's own (a cached function has none on Node 20).
    expect(await second.call(moduleRef<typeof Jobs.add>(JOBS, 'add'), [2, 3])).to.equal(5);
  });
});
