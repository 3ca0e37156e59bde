/**
 * The runner's bundled entry point (dist/src/runner-bundle.cjs, made by `npm run build`): pools
 * start it when it is fresh, it behaves as the unbundled runner, and anything else falls back
 * to the unbundled entry point.
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { query, type Ref } from 'nact';
import { ProcessBackend, runnerEntry } from '../../src/backends/process/backend.js';
import { moduleRef } from '../../src/flame/fn-ref.js';
import { appRoot } from '../../src/app-root.js';
import { startPool } from '../helpers/pools.js';
import type * as Actors from '../fixtures/actors.js';
import type * as Jobs from '../fixtures/jobs.js';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));
const BUNDLE = join(SRC, 'runner-bundle.cjs');
const START = join(SRC, 'runner', 'start-bundle.cjs');
const MAIN = join(SRC, 'runner', 'main.js');
const ACTORS = new URL('../fixtures/actors.js', import.meta.url);
const JOBS = new URL('../fixtures/jobs.js', import.meta.url);
const NACT_VERSION = (createRequire(import.meta.url)('nact/package.json') as { version: string }).version;

/** A process backend asking for encrypted links, as the Kubernetes backend does. */
class EncryptedProcessBackend extends ProcessBackend {
  readonly encryptLinks = true;
}

describe('The runner bundle', function () {
  let cleanup: (() => void) | undefined;
  afterEach(function () {
    cleanup?.();
    cleanup = undefined;
  });

  it('is what a pool\'s runners start after npm run build (rebuild with npm run build if this fails after tsc alone)', async function () {
    expect(runnerEntry(), 'the bundle is missing or older than the compiled files').to.equal(START);
    const pool = await startPool({ name: 'bundled', max: 1, backend: new ProcessBackend({ stdio: 'ignore' }) });
    expect(await pool.call(() => process.argv[1])).to.equal(START);
    // The starter runs the bundle as a CommonJS module of its own file.
    expect(await pool.call(async () => {
      const { createRequire: req } = await import('node:module');
      return Object.keys(req(process.argv[1]!).cache).some((file) => file.endsWith('runner-bundle.cjs'));
    })).to.equal(true);
  });

  it('boots from a V8 code cache that its first runner made, and still imports modules by URL and loads selfsigned', async function () {
    const caches = () => readdirSync(SRC).filter((file) => file.endsWith('.v8cache'));
    const before = new Set(caches());
    // The cache its own flags made is removed however the test ends.
    cleanup = () => {
      for (const file of caches()) if (!before.has(file)) rmSync(join(SRC, file), { force: true });
    };
    const options = { stdio: 'ignore' as const, execArgv: ['--v8-pool-size=1', `--max-old-space-size=${300 + Math.floor(Math.random() * 1000)}`] };
    const state = () => (globalThis as Record<symbol, unknown>)[Symbol.for('flame-actors.codeCache')];
    const first = await startPool({ name: 'cache-maker', max: 1, backend: new ProcessBackend(options) });
    // Flags of their own: no cache yet for them; this runner writes it when it ends (or after 500 ms).
    expect(await first.call(state)).to.equal('none');
    await first.stop();
    // Encrypted links: the runner's node makes its certificate with selfsigned, imported at boot.
    const second = await startPool({ name: 'cache-user', max: 1, backend: new EncryptedProcessBackend(options) });
    expect(await second.call(state)).to.equal('accepted');
    // import() of a function restored from the cache goes through the starter's own import().
    expect(await second.call(moduleRef<typeof Jobs.add>(JOBS, 'add'), [2, 3])).to.equal(5);
  });

  it('shares its nact with the app\'s code: an actor the app\'s nact spawns is reached through the runner\'s', async function () {
    const pool = await startPool({ name: 'bundled-nact', max: 1, backend: new ProcessBackend({ stdio: 'ignore' }) });
    // The app's `import 'nact'` on the runner gets the bundled copy the runner registered.
    expect(await pool.call(async () => {
      const { createRequire: req } = await import('node:module');
      const nact = await import('nact');
      return req(process.argv[1]!)('nact') === nact.default;
    })).to.equal(true);
    const ref = await pool.placeChild<Actors.CounterMsg>(moduleRef<typeof Actors.counter>(ACTORS, 'counter'), [41]);
    const { dispatch } = await import('nact');
    dispatch(ref, { type: 'inc' });
    expect(await query(ref, (sender: Ref<number>) => ({ type: 'get' as const, sender }), 10_000)).to.equal(42);
  });

  it('is not the app: the app root of a runner started from it is not its folder', function () {
    expect(appRoot({}, BUNDLE)).to.equal(process.cwd());
  });

  describe('falls back to the unbundled entry point', function () {
    let dir: string;
    /** An empty bundle and its record, in a folder of dist (nact resolves from there), made of input.js. */
    function fakeBundle(record: { nact?: string; inputs?: string[] }): string {
      const bundle = join(dir, 'runner-bundle.cjs');
      writeFileSync(join(dir, 'input.js'), 'export const made = 1;\n');
      writeFileSync(bundle, '');
      const sources = createHash('sha256').update('export const made = 1;\n').digest('hex');
      writeFileSync(join(dir, 'runner-bundle.json'), JSON.stringify({ sources, ...record }));
      return bundle;
    }
    beforeEach(function () {
      dir = mkdtempSync(join(SRC, '..', 'bundle-test-'));
    });
    afterEach(function () {
      rmSync(dir, { recursive: true, force: true });
    });

    it('starts a bundle that carries the installed nact and was made of the files beside it', function () {
      // (Any bundle but the build's own is started as it is; the build's through its starter.)
      expect(runnerEntry(fakeBundle({ nact: NACT_VERSION, inputs: ['input.js'] }))).to.equal(join(dir, 'runner-bundle.cjs'));
    });

    it('when the bundle was never built', function () {
      expect(runnerEntry(join(dir, 'runner-bundle.cjs'))).to.equal(MAIN);
    });

    it('when a file it was made of was compiled again since, differently (tsc run alone after an edit)', function () {
      const bundle = fakeBundle({ nact: NACT_VERSION, inputs: ['input.js'] });
      writeFileSync(join(dir, 'input.js'), 'export const made = 2;\n');
      expect(runnerEntry(bundle)).to.equal(MAIN);
    });

    it('when a file it was made of is gone, or its record is not there', function () {
      expect(runnerEntry(fakeBundle({ nact: NACT_VERSION, inputs: ['gone.js'] }))).to.equal(MAIN);
      rmSync(join(dir, 'runner-bundle.json'));
      expect(runnerEntry(join(dir, 'runner-bundle.cjs'))).to.equal(MAIN);
    });

    it('when it carries another nact than the one installed beside it', function () {
      expect(runnerEntry(fakeBundle({ nact: '0.0.1', inputs: ['input.js'] }))).to.equal(MAIN);
    });

    it('and the bundle itself refuses to start beside another nact, saying why', async function () {
      // The real bundle, copied beside a nact of another version.
      mkdirSync(join(dir, 'node_modules', 'nact', 'lib'), { recursive: true });
      writeFileSync(join(dir, 'node_modules', 'nact', 'package.json'), JSON.stringify({ name: 'nact', version: '0.0.1', main: 'lib/index.js' }));
      writeFileSync(join(dir, 'node_modules', 'nact', 'lib', 'index.js'), 'module.exports = {};\n');
      copyFileSync(BUNDLE, join(dir, 'runner-bundle.cjs'));
      const pool = startPool({
        name: 'bundle-other-nact', max: 1, bootTimeout: 20_000,
        backend: new ProcessBackend({ stdio: 'ignore', command: [process.execPath, join(dir, 'runner-bundle.cjs')] }),
      });
      const error = await pool.then(async (p) => p.call(() => 1)).then(() => undefined, (e: unknown) => e);
      expect(String((error as Error | undefined)?.message)).to.include(`this runner bundle carries nact ${NACT_VERSION} but the app has nact 0.0.1`);
    });
  });
});
