import { expect } from 'chai';
import { ClosureError, InvalidOptionError, ModuleRefError } from '../../src/errors.js';
import {
  moduleRef,
  shipFunction,
  shipSource,
  type AnyFunction,
  type FnArgs,
  type FnResult,
  type ModuleRef,
} from '../../src/flame/fn-ref.js';

type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
/** Compile-time assertion: the build fails when `T` is not `true`. */
const assertType = <T extends true>(): T | void => undefined;

function refusal(ship: () => unknown): ClosureError {
  try {
    ship();
  } catch (error) {
    expect(error).to.be.instanceOf(ClosureError);
    expect((error as ClosureError).code).to.equal('FLAME_ERR_CLOSURE');
    return error as ClosureError;
  }
  throw new Error('expected the closure to be refused');
}

function expectRefused(ship: () => unknown, identifier: string, message: string | RegExp): void {
  const error = refusal(ship);
  expect(error.details.identifier).to.equal(identifier);
  if (typeof message === 'string') expect(error.message).to.include(message);
  else expect(error.message).to.match(message);
}

describe('moduleRef', () => {
  it('turns an absolute path into a file: URL', () => {
    expect(moduleRef('/srv/app/jobs.js', 'resize')).to.deep.equal({ kind: 'module', module: 'file:///srv/app/jobs.js', export: 'resize' });
  });

  it('keeps a URL, a node: builtin and a bare package specifier', () => {
    expect(moduleRef(new URL('file:///srv/app/jobs.js'), 'a').module).to.equal('file:///srv/app/jobs.js');
    expect(moduleRef('node:os', 'cpus').module).to.equal('node:os');
    expect(moduleRef('@acme/jobs/resize', 'default').module).to.equal('@acme/jobs/resize');
  });

  it('refuses a relative specifier, pointing to new URL(..., import.meta.url)', () => {
    expect(() => moduleRef('./jobs.js', 'a')).to.throw(ModuleRefError, "new URL('./jobs.js', import.meta.url)");
  });

  it('refuses an empty or non-string export name and a missing module', () => {
    expect(() => moduleRef('node:os', '')).to.throw(InvalidOptionError, 'export name must be a non-empty string');
    expect(() => moduleRef('node:os', 42 as never)).to.throw(InvalidOptionError, 'got number');
    expect(() => moduleRef('', 'a')).to.throw(InvalidOptionError, 'got an empty string');
    expect(() => moduleRef(undefined as never, 'a')).to.throw(InvalidOptionError, 'got undefined');
  });

  it('ships as plain wire data', () => {
    const ref = moduleRef<(a: number) => string>('node:os', 'cpus');
    expect(shipFunction(ref)).to.deep.equal({ kind: 'module', module: 'node:os', export: 'cpus' });
    expect(shipFunction({ kind: 'module', module: '/a.js', export: 'f' })).to.deep.equal({ kind: 'module', module: 'file:///a.js', export: 'f' });
  });
});

describe('FnArgs and FnResult', () => {
  it('give the parameters and awaited result of a function or a ModuleRef', () => {
    assertType<Equals<FnResult<(a: number) => Promise<string>>, string>>();
    assertType<Equals<FnResult<ModuleRef<() => number>>, number>>();
    assertType<Equals<FnArgs<ModuleRef<(a: number) => string>>, [a: number]>>();
    assertType<Equals<FnArgs<(a: string, b?: boolean) => void>, [a: string, b?: boolean]>>();
    // @ts-expect-error: proves that the assertion fails for a wrong type.
    assertType<Equals<FnResult<() => Promise<string>>, Promise<string>>>();
  });
});

describe('shipFunction', () => {
  it('ships a plain arrow function as its source with a sha256 hash', () => {
    const add = (a: number, b: number) => a + b;
    const shipped = shipFunction(add);
    expect(shipped).to.deep.include({ kind: 'closure', source: add.toString() });
    expect(shipped.kind === 'closure' && shipped.hash).to.match(/^[0-9a-f]{32}$/);
  });

  it('ships async functions, function expressions and named recursive functions', () => {
    expect(shipFunction(async (ms: number) => ms * 2).kind).to.equal('closure');
    expect(shipFunction(function (n: number) { return n + 1; }).kind).to.equal('closure');
    expect(shipFunction(function fact(n: number): number { return n <= 1 ? 1 : n * fact(n - 1); }).kind).to.equal('closure');
  });

  it('ships destructured, default and rest parameters that refer to each other', () => {
    const fn = ({ a, b: [c] }: { a: number; b: number[] }, d = a + c, ...rest: number[]) => a + c + d + rest.length;
    expect(shipFunction(fn).kind).to.equal('closure');
  });

  it('ships nested functions with shadowing, hoisting, block scopes, labels and catch parameters', () => {
    const fn = (x: number) => {
      const twice = (y: number) => { const x = y * 2; return x; };
      let total = 0;
      outer: for (let i = 0; i < 3; i++) {
        const square = i * i;
        for (const j of [1, 2]) if (j > square) continue outer;
        total += square;
      }
      if (x > 0) { var hoisted: number | undefined = hoistedFunction(); }
      try { JSON.parse('{'); } catch (error) { total += String(error).length; }
      switch (x) { case 1: { const inCase = 1; total += inCase; } }
      return twice(x) + total + (hoisted ?? 0);
      function hoistedFunction() { return 1; }
    };
    expect(shipFunction(fn).kind).to.equal('closure');
  });

  it('ships destructured catch parameters and class static blocks', () => {
    expect(shipSource('() => { try { f() } catch ({ message, cause: [first] = [] }) { return message + first } function f() {} }').kind).to.equal('closure');
    expect(shipSource('() => class { static { var local = 1; this.n = local } }').kind).to.equal('closure');
  });

  it('does not mistake property keys, member names and labels for references', () => {
    const fn = () => ({ foo: 1, bar: Math.PI, ['baz']: [].length }).foo;
    expect(shipFunction(fn).kind).to.equal('closure');
  });

  it('ships classes declared inside, whose methods use this and super', () => {
    const fn = () => {
      class Base { value = 1; get() { return this.value; } }
      class Child extends Base { extra = this.value + 1; override get() { return super.get() + this.extra; } }
      return new Child().get();
    };
    expect(shipFunction(fn).kind).to.equal('closure');
  });

  it('allows the globals of the runtime', () => {
    const fn = async () => {
      await new Promise((resolve) => setTimeout(resolve, 0));
      const res = typeof fetch === 'function' ? new URL('http://example.test/') : null;
      return [Math.max(1, 2), JSON.stringify({}), Buffer.from('x'), process.pid, res, globalThis, undefined, NaN];
    };
    expect(shipFunction(fn).kind).to.equal('closure');
  });

  it('allows dynamic import, the way to use modules in a closure', () => {
    expect(shipFunction(async () => (await import('node:crypto')).randomUUID()).kind).to.equal('closure');
  });

  it('refuses a dynamic import of a relative specifier, which the runner cannot resolve like the parent', () => {
    expectRefused(() => shipSource("async () => import('./helpers.js')"), './helpers.js', "new URL('./helpers.js', import.meta.url)");
  });

  it('refuses a closure that reads a variable of its enclosing scope, naming it', () => {
    const limit = 10;
    expectRefused(() => shipFunction((n: number) => Math.min(n, limit)), 'limit', 'closure reads "limit" from its enclosing scope; pass it as an argument, or use moduleRef(...)');
  });

  it('refuses a capture used only in a nested function', () => {
    const secret = 's';
    expectRefused(() => shipFunction(() => () => secret), 'secret', 'reads "secret"');
  });

  it('refuses a capture in a shorthand property and in a default parameter value', () => {
    const x = 1;
    expectRefused(() => shipFunction(() => ({ x })), 'x', 'reads "x"');
    expectRefused(() => shipFunction((a = x) => a), 'x', 'reads "x"');
  });

  it('refuses a write to a variable of the enclosing scope', () => {
    let count = 0;
    expectRefused(() => shipFunction(() => { count = 1; }), 'count', 'writes "count"');
    expect(count).to.equal(0);
  });

  it('respects block scoping: a let is not visible outside its block', () => {
    expectRefused(() => shipSource('() => { { let inner = 1 } return inner }'), 'inner', 'reads "inner"');
  });

  it('does not let parameter defaults see the body\'s declarations', () => {
    expectRefused(() => shipSource('function (a = b) { var b = 1; return a }'), 'b', 'reads "b"');
  });

  it('locates the refused identifier in the closure', () => {
    const error = refusal(() => shipSource('(a) => {\n  return a + offset\n}'));
    expect(error.details).to.deep.include({ identifier: 'offset', line: 2, column: 14 });
  });

  it('refuses this outside a nested function or class', () => {
    expectRefused(() => shipFunction(function (this: { n: number }) { return this.n; }), 'this', '"this" is not available in a shipped closure');
    expectRefused(() => shipSource('() => [1].map(() => this)'), 'this', '"this" is not available');
    expectRefused(() => shipSource('() => class extends this.Base {}'), 'this', '"this" is not available');
  });

  it('refuses arguments at the top level of an arrow function, but not in a nested function', () => {
    expectRefused(() => shipSource('() => arguments[0]'), 'arguments', 'use a rest parameter (...args)');
    expect(shipSource('function () { return arguments.length }').kind).to.equal('closure');
    expect(shipSource('() => function () { return arguments }').kind).to.equal('closure');
  });

  it('refuses super, import.meta and require, pointing to await import()', () => {
    expectRefused(() => shipSource('() => super.x'), 'super', '"super" is not available');
    expectRefused(() => shipSource('() => import.meta.url'), 'import.meta', '"import.meta" is not available');
    expectRefused(() => shipSource("() => require('node:fs')"), 'require', "await import('module')");
  });

  it('refuses method shorthand, getters and class methods', () => {
    const message = 'method shorthand cannot be shipped: write an arrow function or use moduleRef(...)';
    expect(refusal(() => shipFunction({ m() { return 1; } }.m)).message).to.equal(message);
    expect(refusal(() => shipFunction({ async *['m' + 1]() {} }.m1)).message).to.include('method shorthand');
    expect(refusal(() => shipFunction(Object.getOwnPropertyDescriptor({ get x() { return 1; } }, 'x')!.get!)).message).to.equal(message);
    class Jobs { static run() { return 1; } }
    expect(refusal(() => shipFunction(Jobs.run)).message).to.equal(message);
    expect(refusal(() => shipFunction(Jobs as unknown as AnyFunction)).message).to.include('a class cannot be shipped');
  });

  it('refuses bound, native and generator functions', () => {
    expect(refusal(() => shipFunction(((a: number) => a).bind(null))).message).to.include('a bound function cannot be shipped');
    expect(refusal(() => shipFunction(Math.max)).message).to.include('a native function cannot be shipped (max has no source)');
    expect(refusal(() => shipFunction(function* () { yield 1; })).message).to.include('a generator function cannot be shipped');
    expect(refusal(() => shipFunction(async function* () { yield 1; })).message).to.include('a generator function');
  });

  it('refuses compiler helpers, naming them, before anything else', () => {
    for (const [source, identifier] of [
      ['function () { return __awaiter(this, void 0, void 0, function* () { return x; }); }', '__awaiter'],
      ['() => { const n = limit; return __awaiter(this, void 0, void 0, function* () { return n; }); }', '__awaiter'],
      ['function () { return _this.value + y; }', '_this'],
      ['() => __vite_ssr_import_0__.readFile("x")', '__vite_ssr_import_0__'],
    ] as const) {
      expectRefused(() => shipSource(source), identifier, 'transformed by a compiler or bundler');
    }
  });

  it('ships closures compiled by esbuild with keepNames (tsx), whose __name the runner provides', () => {
    const shipped = shipSource('async () => { const inner = __name(() => 1, "inner"); return inner.name; }');
    expect(shipped).to.include({ kind: 'closure' });
    expectRefused(() => shipSource('() => { __name = null; }'), '__name', 'a helper that does not exist on the runner');
  });

  it('recognises the tsc CommonJS import pattern (0, x_1.fn)(...)', () => {
    const source = "(s) => (0, node_crypto_1.createHash)('sha256').update(s).digest('hex')";
    expectRefused(() => shipSource(source), 'node_crypto_1', /import rewritten for CommonJS by tsc.*compile to ES2022/);
  });

  it('refuses source that does not parse as a function', () => {
    expect(refusal(() => shipSource('() => {')).message).to.include('cannot be parsed as a function');
    expect(refusal(() => shipSource('1); (2')).message).to.include('cannot be parsed as a function');
    expect(refusal(() => shipSource('1, () => 1')).message).to.include('is not a function');
  });

  it('refuses something that is neither a function nor a moduleRef', () => {
    expect(() => shipFunction(42 as never)).to.throw(InvalidOptionError, 'got number');
  });

  it('caches per function and per source: a cache hit returns the same object, fast', () => {
    const fn = (x: number) => x + 1;
    const first = shipFunction(fn);
    const make = () => (y: number) => y * 2;
    expect(shipFunction(make())).to.equal(shipFunction(make()));
    const start = performance.now();
    for (let i = 0; i < 100_000; i++) if (shipFunction(fn) !== first) throw new Error('cache miss');
    expect(performance.now() - start).to.be.below(200);
  });

  it('keeps refusing a refused source on a cache hit', () => {
    expectRefused(() => shipSource('() => cachedCapture'), 'cachedCapture', 'reads');
    expectRefused(() => shipSource('() => cachedCapture'), 'cachedCapture', 'reads');
  });
});
