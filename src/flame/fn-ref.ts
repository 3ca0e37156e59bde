/**
 * Parent side of shipping a function to a runner: either a closure's source text, checked so
 * that it can run without its enclosing scope, or a {@link ModuleRef} the runner imports itself.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { isAbsolute } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { AnyNode, Function as FunctionNode, Identifier, Node, Pattern } from 'acorn';
import type { AncestorVisitors } from 'acorn-walk';
import { ClosureError, InvalidOptionError, ModuleRefError } from '../errors.js';

/**
 * The parser is loaded on the first closure checked, not when the library is imported: a runner
 * that imports the app (and so flame-actors) never ships a closure, and should not pay for it.
 */
let acorn: { parse: typeof import('acorn').parse; ancestor: typeof import('acorn-walk').ancestor } | undefined;
function parser(): NonNullable<typeof acorn> {
  if (!acorn) {
    const require = createRequire(import.meta.url);
    acorn = { parse: (require('acorn') as typeof import('acorn')).parse, ancestor: (require('acorn-walk') as typeof import('acorn-walk')).ancestor };
  }
  return acorn;
}

/** Any function type: `never[]` parameters make every function assignable to it. */
export type AnyFunction = (...args: never[]) => unknown;

declare const fnType: unique symbol;

/** A reference to an exported function of a module that the runner resolves itself (same image/code). */
export interface ModuleRef<F extends AnyFunction = AnyFunction> {
  readonly kind: 'module';
  /** A URL (`file:`, `node:`...) or a bare package specifier. */
  readonly module: string;
  readonly export: string;
  /** Type-only: carries `F` for {@link FnArgs} and {@link FnResult}; never present at runtime. */
  readonly [fnType]?: F;
}

/**
 * What travels on the wire (msgpack-able plain data). A closure shipped by this process has an
 * `id` (unique in the process): once a runner has it, a call sends only the id.
 */
export type ShippedFunction =
  | { readonly kind: 'closure'; readonly source: string; readonly hash: string; readonly id?: number }
  | { readonly kind: 'module'; readonly module: string; readonly export: string };

let nextClosureId = 1;

/**
 * True for a parameter list that says nothing: `never[]`, the parameters of {@link AnyFunction}
 * (an untyped `moduleRef(url, 'name')`).
 */
type Untyped<P extends readonly unknown[]> = number extends P['length'] ? ([P[number]] extends [never] ? true : false) : false;

/** Parameters, or `unknown[]` when the function type says nothing about them. */
type ArgsOf<P extends readonly unknown[]> = Untyped<P> extends true ? unknown[] : P;

/** The function a function type or a {@link ModuleRef} type stands for. */
type FnOf<F> = F extends ModuleRef<infer G extends AnyFunction> ? G : F extends AnyFunction ? F : never;

/** Parameters of a function, or of the function a {@link ModuleRef} points to (`unknown[]` for an untyped ref). */
export type FnArgs<F> = [FnOf<F>] extends [never] ? never : ArgsOf<Parameters<FnOf<F>>>;

/** Parameters of an actor factory after its first, the parent ref `placeChild` passes. */
export type FactoryArgs<F> = [FnOf<F>] extends [never]
  ? never
  : Parameters<FnOf<F>> extends readonly [unknown?, ...infer Rest]
    ? ArgsOf<Rest>
    : unknown[];

/** Awaited return type of a function, or of the function a {@link ModuleRef} points to. */
export type FnResult<F> = F extends ModuleRef<infer G extends AnyFunction>
  ? Awaited<ReturnType<G>>
  : F extends (...args: never[]) => infer R
    ? Awaited<R>
    : never;

const madeRefs = new WeakSet<object>();

/**
 * Refers to `exportName` of `module`, which the runner imports itself: use it for code that needs
 * imports or module state. Absolute paths become `file:` URLs; relative specifiers are refused
 * because the runner would resolve them against its own loader, not the caller's module.
 */
export function moduleRef<F extends AnyFunction = AnyFunction>(module: string | URL, exportName: string): ModuleRef<F> {
  if (typeof exportName !== 'string' || exportName === '') {
    throw new InvalidOptionError(`moduleRef: the export name must be a non-empty string, got ${describeValue(exportName)}`, {
      option: 'exportName', expected: 'a non-empty string',
    });
  }
  let specifier: string;
  if (module instanceof URL) specifier = module.href;
  else if (typeof module !== 'string' || module === '') {
    throw new InvalidOptionError(`moduleRef: the module must be a URL, an absolute path or a package name, got ${describeValue(module)}`, {
      option: 'module', expected: 'a URL, an absolute path or a package name',
    });
  } else if (isAbsolute(module)) specifier = pathToFileURL(module).href;
  else if (module.startsWith('.')) {
    throw new ModuleRefError(
      `moduleRef: relative specifier "${module}" cannot be resolved on the runner; pass new URL('${module}', import.meta.url) or an absolute path`,
      { details: { module } },
    );
  } else if (/^[a-z][a-z\d+.-]*:/i.test(module)) {
    if (!URL.canParse(module)) {
      throw new ModuleRefError(`moduleRef: "${module}" is not a valid URL`, { details: { module } });
    }
    specifier = new URL(module).href;
  } else specifier = module;
  const ref = Object.freeze({ kind: 'module' as const, module: specifier, export: exportName });
  madeRefs.add(ref);
  return ref;
}

const fnToString = Function.prototype.toString;
const byFunction = new WeakMap<AnyFunction, ShippedFunction>();
const SOURCE_CACHE_SIZE = 1000;
/** Inline closures are new objects on every call but share their source: cache by text too. */
const bySource = new Map<string, ShippedFunction | ClosureError>();

/**
 * Turns a function or a {@link ModuleRef} into wire data. Throws {@link ClosureError} for a
 * closure that could not run on a runner, before anything is sent.
 */
export function shipFunction(fn: AnyFunction | ModuleRef, allowGenerator = false): ShippedFunction {
  const shipped = shipAny(fn);
  if (!allowGenerator && generators.has(shipped)) {
    // Only `pool.stream` takes a generator: a call returns one value.
    throw new ClosureError(
      'a generator function cannot be shipped to pool.call: a call returns one value; stream its items with pool.stream(fn, args), return an array, or use an async function',
      { details: { reason: 'generator' } },
    );
  }
  return shipped;
}

/** Shipped closures whose source is a generator function (only `pool.stream` runs them). */
const generators = new WeakSet<ShippedFunction>();

function shipAny(fn: AnyFunction | ModuleRef): ShippedFunction {
  if (typeof fn === 'function') {
    const hit = byFunction.get(fn);
    if (hit !== undefined) return hit;
    const source = fnToString.call(fn);
    // An inline closure is a new function on every call with the same source: found by its text,
    // and not added to byFunction (a WeakMap entry per call would be garbage the collector must
    // trace as an ephemeron). Native and bound functions never get into bySource.
    const known = bySource.get(source);
    if (known !== undefined && !(known instanceof ClosureError)) return known;
    if (/\{\s*\[native code\]\s*\}$/.test(source)) {
      throw fn.name.startsWith('bound ')
        ? new ClosureError(
            'a bound function cannot be shipped (its target and bound values have no source): ship an arrow function that takes them as arguments, or use moduleRef(...)',
            { details: { reason: 'bound' } },
          )
        : new ClosureError(
            `a native function cannot be shipped (${fn.name || 'anonymous'} has no source): wrap it, e.g. (x) => Math.sqrt(x), or use moduleRef(...)`,
            { details: { reason: 'native' } },
          );
    }
    const shipped = shipSource(source);
    byFunction.set(fn, shipped);
    return shipped;
  }
  if (typeof fn === 'object' && fn !== null && fn.kind === 'module') {
    return madeRefs.has(fn) ? fn : moduleRef(fn.module, fn.export);
  }
  throw new InvalidOptionError(`shipFunction expects a function or a moduleRef(...), got ${describeValue(fn)}`);
}

/**
 * {@link shipFunction} for a function's source text (as `Function.prototype.toString` gives it).
 * Internal; exported so that tests can check sources a compiler would produce.
 */
export function shipSource(source: string): ShippedFunction {
  const hit = bySource.get(source);
  if (hit !== undefined) {
    if (hit instanceof ClosureError) throw new ClosureError(hit.message, { details: hit.details });
    return hit;
  }
  let result: ShippedFunction | ClosureError;
  try {
    const generator = checkSource(source);
    const hash = createHash('sha256').update(source).digest('hex').slice(0, 32);
    result = Object.freeze({ kind: 'closure' as const, source, hash, id: nextClosureId++ });
    if (generator) generators.add(result);
  } catch (error) {
    if (!(error instanceof ClosureError)) throw error;
    result = error;
  }
  if (bySource.size >= SOURCE_CACHE_SIZE) bySource.delete(bySource.keys().next().value as string);
  bySource.set(source, result);
  if (result instanceof ClosureError) throw result;
  return result;
}

/** A closure using the common syntax, checked once to load and run the parser ahead of the first real one. */
const SAMPLE_CLOSURE = `async ({ a, b = 1 }, ...rest) => {
  const [x] = rest;
  for (const k of Object.keys(a)) if (k === \`\${b}\`) return (await import('node:path')).join(k);
  try { return a?.b ?? x.map((v) => v * 2); } catch (e) { throw new Error(String(e)); }
}`;
let prepared = false;

/**
 * Loads the closure checker's parser and checks a sample closure with it, once per process: the
 * first closure a pool ships then costs what any other does (about 1 ms, not 15). A pool calls
 * this while its first runners boot, when the parent has nothing else to do.
 */
export function prepareClosureChecks(): void {
  if (prepared) return;
  prepared = true;
  checkSource(SAMPLE_CLOSURE);
}

const METHOD_REFUSAL = 'method shorthand cannot be shipped: write an arrow function or use moduleRef(...)';

/** The single expression `text` consists of, or why there is none. */
function parseExpression(text: string): AnyNode | Error {
  try {
    // Module code is strict, like the runner's compilation of the closure.
    const program = parser().parse(text, { ecmaVersion: 'latest', sourceType: 'module', allowSuperOutsideMethod: true });
    const [only] = program.body;
    if (program.body.length === 1 && only?.type === 'ExpressionStatement' && only.start === 0 && only.end === text.length) {
      return only.expression;
    }
    return new Error('not a single function expression');
  } catch (error) {
    return error as Error;
  }
}

/** Throws ClosureError for a closure that could not run on a runner; true when it is a generator function. */
function checkSource(source: string): boolean {
  const root = parseExpression(`(${source})`);
  if (root instanceof Error) {
    // Methods and accessors print without `function`, so they only parse inside an object or a class.
    const inObject = parseExpression(`({${source}})`);
    const property = !(inObject instanceof Error) && inObject.type === 'ObjectExpression' ? inObject.properties : [];
    const inClass = parseExpression(`(class {${source}})`);
    const member = !(inClass instanceof Error) && inClass.type === 'ClassExpression' ? inClass.body.body : [];
    if (
      (property.length === 1 && property[0]!.type === 'Property' && (property[0].method || property[0].kind !== 'init')) ||
      (member.length === 1 && member[0]!.type === 'MethodDefinition')
    ) {
      throw new ClosureError(METHOD_REFUSAL, { details: { reason: 'method' } });
    }
    throw new ClosureError(`the closure's source cannot be parsed as a function (${root.message})`, { details: { reason: 'syntax' } });
  }
  if (root.type === 'ClassExpression') {
    throw new ClosureError('a class cannot be shipped: ship a function that uses it, or use moduleRef(...)', {
      details: { reason: 'class' },
    });
  }
  if (root.type !== 'ArrowFunctionExpression' && root.type !== 'FunctionExpression') {
    throw new ClosureError(`the closure's source is not a function (${root.type})`, { details: { reason: 'syntax' } });
  }
  const problem = findProblem(root, source);
  if (problem !== undefined) throw problem;
  return root.generator === true;
}

type Scoped = Map<Node, Set<string>>;

function declare(map: Scoped, scope: Node, names: Iterable<string>): void {
  let set = map.get(scope);
  if (set === undefined) map.set(scope, (set = new Set()));
  for (const name of names) set.add(name);
}

function* boundNames(pattern: Pattern): Generator<string> {
  switch (pattern.type) {
    case 'Identifier': yield pattern.name; break;
    case 'AssignmentPattern': yield* boundNames(pattern.left); break;
    case 'RestElement': yield* boundNames(pattern.argument); break;
    case 'ArrayPattern': for (const element of pattern.elements) if (element) yield* boundNames(element); break;
    case 'ObjectPattern':
      for (const property of pattern.properties) {
        yield* boundNames(property.type === 'RestElement' ? property.argument : property.value);
      }
      break;
    default: // MemberExpression targets bind nothing.
  }
}

const isFunction = (node: Node): node is FunctionNode =>
  node.type === 'FunctionExpression' || node.type === 'FunctionDeclaration' || node.type === 'ArrowFunctionExpression';

/** The scope a lexical declaration belongs to: a `case` declares into its whole `switch`. */
const lexicalScope = (ancestors: AnyNode[]): Node => {
  const parent = ancestors[ancestors.length - 2]!;
  return parent.type === 'SwitchCase' ? ancestors[ancestors.length - 3]! : parent;
};

const varScope = (ancestors: AnyNode[]): Node => {
  for (let i = ancestors.length - 2; i > 0; i--) {
    const node = ancestors[i]!;
    if (isFunction(node) || node.type === 'StaticBlock') return node;
  }
  return ancestors[0]!;
};

const COMPILER_HELPERS = new Set([
  '_this', '_super', '_arguments', 'regeneratorRuntime', '_regeneratorRuntime', '_asyncToGenerator', '_async_to_generator',
  '_objectSpread', '_object_spread', '_object_spread_props', '_defineProperty', '_define_property', '_classCallCheck',
  '_class_call_check', '_interopRequireDefault', '_interop_require_default', '_interopRequireWildcard',
]);
const COMMONJS_VARIABLES = new Set(['require', '__dirname', '__filename']);
/** Standard ES globals, in case the parent runtime hides one that the runner has. */
const ES_GLOBALS = new Set(['globalThis', 'undefined', 'NaN', 'Infinity', 'SharedArrayBuffer', 'Atomics', 'WebAssembly']);

interface Problem { priority: number; start: number; error: ClosureError }

function refuseIdentifier(name: string, write: boolean, memberObject: boolean): { priority: number; message: string } | undefined {
  if (COMMONJS_VARIABLES.has(name)) {
    return {
      priority: 1,
      message: name === 'require'
        ? 'closure uses "require", which does not exist on the runner (runners are ES modules): use `await import(\'module\')` inside the closure, or use moduleRef(...)'
        : `closure uses "${name}", a CommonJS module variable that does not exist on the runner (runners are ES modules): compute it in the parent and pass it as an argument`,
    };
  }
  // esbuild's keepNames helper (tsx): the runner provides it to every closure.
  if (name === '__name' && !write) return undefined;
  const transformed = 'the closure was transformed by a compiler or bundler and does not run as written: compile to ES2022 or later (ES modules, no downlevel helpers), or use moduleRef(...)';
  if (COMPILER_HELPERS.has(name) || name.startsWith('_ts_') || name.startsWith('__')) {
    return { priority: 0, message: `closure uses "${name}", a helper that does not exist on the runner; ${transformed}` };
  }
  if (memberObject && /^[A-Za-z_$][\w$]*_\d+$/.test(name)) {
    return { priority: 0, message: `closure uses "${name}", an import rewritten for CommonJS by tsc (e.g. \`(0, ${name}.fn)(...)\`); ${transformed}` };
  }
  if (/^cov_\w+$/.test(name)) {
    return { priority: 0, message: `closure uses "${name}", a counter inserted by a coverage instrumenter; ${transformed}` };
  }
  if (name in globalThis || ES_GLOBALS.has(name)) return undefined;
  if (name === 'arguments') {
    return { priority: 1, message: '"arguments" is not available at the top level of a shipped arrow function: use a rest parameter (...args)' };
  }
  return {
    priority: 1,
    message: write
      ? `closure writes "${name}" of its enclosing scope, which a runner cannot change: return the value instead, or use moduleRef(...)`
      : `closure reads "${name}" from its enclosing scope; pass it as an argument, or use moduleRef(...)`,
  };
}

/**
 * Resolves every identifier of `root` against the scopes declared inside it; whatever is left
 * must be a global of the runtime. Returns the most useful refusal, if any.
 */
function findProblem(root: FunctionNode, source: string): ClosureError | undefined {
  const lexical: Scoped = new Map();
  const params: Scoped = new Map(); // Parameter expressions do not see the function body's declarations.
  parser().ancestor(root, {
    Function(node) {
      const names = node.params.flatMap((param) => [...boundNames(param)]);
      if (node.type !== 'ArrowFunctionExpression') names.push('arguments');
      if (node.type === 'FunctionExpression' && node.id) names.push(node.id.name);
      declare(params, node, names);
    },
    VariableDeclaration(node, _state, ancestors) {
      const names = node.declarations.flatMap((declarator) => [...boundNames(declarator.id)]);
      declare(lexical, node.kind === 'var' ? varScope(ancestors) : lexicalScope(ancestors), names);
    },
    FunctionDeclaration(node, _state, ancestors) {
      if (node.id) declare(lexical, lexicalScope(ancestors), [node.id.name]);
    },
    Class(node, _state, ancestors) {
      if (!node.id) return;
      declare(lexical, node, [node.id.name]);
      if (node.type === 'ClassDeclaration') declare(lexical, lexicalScope(ancestors), [node.id.name]);
    },
    CatchClause(node) {
      if (node.param) declare(lexical, node, boundNames(node.param));
    },
  });

  const resolves = (name: string, ancestors: AnyNode[]): boolean => {
    for (let i = ancestors.length - 2; i >= 0; i--) {
      const scope = ancestors[i]!;
      if (params.get(scope)?.has(name)) return true;
      if (isFunction(scope) && ancestors[i + 1] !== scope.body) continue;
      if (lexical.get(scope)?.has(name)) return true;
    }
    return false;
  };
  /** Whether `this`/`super` at this point belong to something declared inside the closure. */
  const boundInside = (ancestors: AnyNode[], accept: (fn: FunctionNode, parent: AnyNode) => boolean): boolean => {
    for (let i = ancestors.length - 2; i >= 0; i--) {
      const node = ancestors[i]!;
      if (node.type === 'StaticBlock') return true;
      if (node.type === 'PropertyDefinition' && ancestors[i + 1] === node.value) return true;
      if (node.type === 'FunctionExpression' || node.type === 'FunctionDeclaration') {
        return node !== root && accept(node, ancestors[i - 1]!);
      }
    }
    return false;
  };

  const problems: Problem[] = [];
  const refuse = (at: Node, priority: number, message: string, details: Record<string, unknown> = {}): void => {
    const before = source.slice(0, at.start - 1).split('\n');
    const location = { line: before.length, column: before[before.length - 1]!.length + 1 };
    problems.push({ priority, start: at.start, error: new ClosureError(message, { details: { ...details, ...location } }) });
  };
  const reference = (node: Identifier, ancestors: AnyNode[], write: boolean): void => {
    if (resolves(node.name, ancestors)) return;
    const parent = ancestors[ancestors.length - 2];
    const memberObject = parent?.type === 'MemberExpression' && parent.object === node;
    const refusal = refuseIdentifier(node.name, write, memberObject);
    if (refusal) refuse(node, refusal.priority, refusal.message, { identifier: node.name });
  };
  const visitors: AncestorVisitors<unknown> & { VariablePattern(node: Identifier, state: unknown, ancestors: AnyNode[]): void } = {
    Identifier: (node, _state, ancestors) => reference(node, ancestors, false),
    // Declarations come through here too, and resolve to themselves; what is left are assignments.
    VariablePattern: (node, _state, ancestors) => reference(node, ancestors, true),
    ThisExpression(node, _state, ancestors) {
      if (!boundInside(ancestors, () => true)) {
        refuse(node, 1, '"this" is not available in a shipped closure: pass what you need as an argument', { identifier: 'this' });
      }
    },
    Super(node, _state, ancestors) {
      const isMethod = (fn: FunctionNode, parent: AnyNode): boolean =>
        parent.type === 'MethodDefinition' || (parent.type === 'Property' && parent.value === fn && (parent.method || parent.kind !== 'init'));
      if (!boundInside(ancestors, isMethod)) {
        refuse(node, 1, '"super" is not available in a shipped closure: it only exists in methods, which cannot be shipped', { identifier: 'super' });
      }
    },
    ImportExpression(node) {
      const specifier = node.source.type === 'Literal' ? node.source.value : undefined;
      if (typeof specifier === 'string' && /^\.\.?\//.test(specifier)) {
        refuse(node, 1, `closure imports "${specifier}", which the runner would resolve against its working directory, not your module: import new URL('${specifier}', import.meta.url).href passed as an argument, or use moduleRef(...)`, { identifier: specifier });
      }
    },
    MetaProperty(node) {
      if (node.meta.name === 'import') {
        refuse(node, 1, '"import.meta" is not available in a shipped closure (on the runner it would not describe your module): compute the value in the parent and pass it as an argument', { identifier: 'import.meta' });
      }
    },
  };
  parser().ancestor(root, visitors);
  if (problems.length === 0) return undefined;
  problems.sort((a, b) => a.priority - b.priority || a.start - b.start);
  return problems[0]!.error;
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return value === '' ? 'an empty string' : JSON.stringify(value);
  return typeof value === 'object' ? 'an object' : typeof value;
}
