import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { ClosureError, FlameError, ModuleRefError, ProtocolError } from '../../src/errors.js';
import { moduleRef, shipFunction, shipSource, type ShippedFunction } from '../../src/flame/fn-ref.js';
import { FunctionLoader } from '../../src/runner/fn-loader.js';
import type * as Jobs from '../fixtures/jobs.js';

const jobs = new URL('../fixtures/jobs.js', import.meta.url);

async function rejection(promise: Promise<unknown>): Promise<FlameError> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(FlameError);
    return error as FlameError;
  }
  throw new Error('expected a rejection');
}

describe('FunctionLoader', () => {
  describe('closures', () => {
    it('runs a closure shipped by the parent: (a, b) => a + b with [1, 2] gives 3', async () => {
      const fn = await new FunctionLoader().load(shipFunction((a: number, b: number) => a + b));
      expect(fn(1, 2)).to.equal(3);
    });

    it('runs in the main context, with the runtime globals', async () => {
      const fn = await new FunctionLoader().load(shipFunction(async (text: string) => {
        await new Promise((resolve) => setTimeout(resolve, 0));
        return [Buffer.from(text).toString('base64'), new URL('/p', 'http://h.test').href, typeof fetch, process.pid];
      }));
      expect(await fn('hi')).to.deep.equal(['aGk=', 'http://h.test/p', 'function', process.pid]);
    });

    it('runs a closure that imports a builtin with await import()', async () => {
      const fn = await new FunctionLoader().load(shipFunction(async (...parts: string[]) => (await import('node:path')).posix.join(...parts)));
      expect(await fn('a', 'b')).to.equal('a/b');
    });

    it('resolves bare package specifiers of dynamic imports from resolveFrom (default: the working directory)', async () => {
      const fn = await new FunctionLoader().load(shipSource("async () => typeof (await import('acorn')).parse"));
      expect(await fn()).to.equal('function');
    });

    it('names the closure flame://fn/<hash>.js in stack traces', async () => {
      const shipped = shipSource("() => {\n  throw new Error('boom')\n}");
      const fn = await new FunctionLoader().load(shipped);
      expect(fn).to.throw(Error, 'boom').with.property('stack').that.includes(`flame://fn/${(shipped as { hash: string }).hash}.js:2:`);
    });

    it('compiles a closure once: a cache hit returns the same function', async () => {
      const loader = new FunctionLoader();
      const shipped = shipFunction((n: number) => n * 3);
      expect(await loader.load(shipped)).to.equal(await loader.load({ ...shipped }));
    });

    it('evicts the least recently used closure beyond maxCachedClosures', async () => {
      const loader = new FunctionLoader({ maxCachedClosures: 2 });
      const [a, b, c] = ['() => 1', '() => 2', '() => 3'].map(shipSource) as [ShippedFunction, ShippedFunction, ShippedFunction];
      const firstA = await loader.load(a);
      const firstB = await loader.load(b);
      expect(await loader.load(a)).to.equal(firstA); // a is now the most recently used
      await loader.load(c); // evicts b
      expect(await loader.load(a)).to.equal(firstA);
      expect(await loader.load(b)).to.not.equal(firstB);
    });

    it('knows a closure by its parent\'s id once it came in full, for at most maxCachedClosures ids', async () => {
      const loader = new FunctionLoader({ maxCachedClosures: 2 });
      const [a, b, c] = ['() => 11', '() => 12', '() => 13'].map(shipSource) as [ShippedFunction, ShippedFunction, ShippedFunction];
      const id = (s: ShippedFunction) => (s as { id: number }).id;
      expect(id(a)).to.be.a('number');
      expect(new Set([id(a), id(b), id(c)]).size).to.equal(3);
      expect(loader.cached(id(a))).to.equal(undefined);
      const fa = await loader.load(a);
      expect(loader.cached(id(a))).to.equal(fa);
      expect(loader.origin(id(a))).to.equal(`flame://fn/${(a as { hash: string }).hash}.js`);
      // A hit by source (another shipped object of the same closure, a new id) learns the new id too.
      const again = { ...a, id: id(a) + 1_000_000 };
      expect(loader.cached(again)).to.equal(fa);
      expect(loader.cached(again.id)).to.equal(fa);
      await loader.load(b);
      await loader.load(c);
      // Bounded: the oldest ids are forgotten (the parent then sends the closure again).
      expect(loader.cached(id(a))).to.equal(undefined);
      expect(loader.cached(id(c))).to.be.a('function');
      expect(loader.origin(id(a))).to.equal('');
    });

    it('hands a cached closure over synchronously, and nothing for another source under its hash', async () => {
      const loader = new FunctionLoader();
      const shipped = shipSource('() => 1') as { kind: 'closure'; source: string; hash: string };
      expect(loader.cached(shipped)).to.equal(undefined);
      const fn = await loader.load(shipped);
      expect(loader.cached({ ...shipped })).to.equal(fn);
      expect(loader.cached({ ...shipped, source: '() => 2' })).to.equal(undefined);
    });

    it('refuses a closure whose source does not match its hash', async () => {
      const error = await rejection(new FunctionLoader().load({ kind: 'closure', source: '() => 1', hash: 'f'.repeat(32) }));
      expect(error).to.be.instanceOf(ProtocolError).with.property('message').that.includes('does not match its hash');
    });

    it('refuses a cached hash sent with another source', async () => {
      const loader = new FunctionLoader();
      const shipped = shipSource('() => 1') as { kind: 'closure'; source: string; hash: string };
      await loader.load(shipped);
      expect(await rejection(loader.load({ ...shipped, source: '() => 2' }))).to.be.instanceOf(ProtocolError);
    });

    it('refuses a source that does not compile on the runner with a ClosureError', async () => {
      const source = '() => {';
      const hash = createHash('sha256').update(source).digest('hex').slice(0, 32);
      const error = await rejection(new FunctionLoader().load({ kind: 'closure', source, hash }));
      expect(error).to.be.instanceOf(ClosureError).with.property('message').that.includes('does not compile on the runner');
    });
  });

  describe('module refs', () => {
    it('runs an export of a module the runner imports itself', async () => {
      const loader = new FunctionLoader();
      const add = await loader.load(shipFunction(moduleRef<typeof Jobs.add>(jobs, 'add')));
      expect(add(1, 2)).to.equal(3);
      expect(await (await loader.load(shipFunction(moduleRef(jobs, 'greet'))))('ann')).to.equal('hello ann');
      expect((await loader.load(shipFunction(moduleRef(jobs, 'default'))))(4)).to.equal(8);
    });

    it('resolves builtins and bare package specifiers', async () => {
      const loader = new FunctionLoader();
      expect(await loader.load(shipFunction(moduleRef('node:path', 'join')))).to.be.a('function');
      expect(await loader.load(shipFunction(moduleRef('acorn', 'parse')))).to.be.a('function');
    });

    it('refuses a missing module, saying it must exist on the runner', async () => {
      const missing = new URL('../fixtures/no-such-module.js', import.meta.url).href;
      const error = await rejection(new FunctionLoader().load({ kind: 'module', module: missing, export: 'run' }));
      expect(error).to.be.instanceOf(ModuleRefError);
      expect(error.message).to.include(`module "${missing}" was not found on the runner`).and.include('same image/code as the parent');
      const bare = await rejection(new FunctionLoader().load({ kind: 'module', module: 'no-such-package-flame', export: 'run' }));
      expect(bare).to.be.instanceOf(ModuleRefError).with.property('message').that.includes('"no-such-package-flame" was not found');
    });

    it('refuses a missing or non-function export, listing the function exports', async () => {
      const loader = new FunctionLoader();
      const missing = await rejection(loader.load(shipFunction(moduleRef(jobs, 'subtract'))));
      expect(missing).to.be.instanceOf(ModuleRefError);
      expect(missing.message).to.include('has no function export "subtract"').and.include('its function exports: add, default, greet');
      const notFunction = await rejection(loader.load(shipFunction(moduleRef(jobs, 'version'))));
      expect(notFunction.message).to.include('"version" (it is a string)');
    });
  });

  it('rejects malformed input with a ProtocolError instead of throwing', async () => {
    const loader = new FunctionLoader();
    for (const bad of [null, 42, {}, { kind: 'closure', source: 1, hash: 'x' }, { kind: 'module', module: 'node:os' }]) {
      let pending: Promise<unknown> | undefined;
      expect(() => (pending = loader.load(bad as never))).not.to.throw();
      expect(await rejection(pending!)).to.be.instanceOf(ProtocolError);
    }
  });
});
