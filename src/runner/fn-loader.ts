/**
 * Runner side of shipping a function: compiles shipped closures and imports module refs.
 * Imports only types from the parent side, so that runners do not load the parser.
 *
 * One resolution rule for everything a runner imports by name: bare specifiers resolve from the
 * app's root (see app-root.ts), as from a file in that folder, through Node's own loader (with
 * the loaders and conditions the runner was started with). Closures compile into functions whose
 * file is that same place, so their `await import('pkg')` follows the rule too.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import vm from 'node:vm';
import { ClosureError, ModuleRefError, ProtocolError, isFlameError } from '../errors.js';
import type { ShippedFunction } from '../flame/fn-ref.js';
import { appRoot } from '../app-root.js';
import { dynamicImport } from '../dynamic-import.js';

/** A shipped function, ready to call with the call's arguments. */
export type LoadedFunction = (...args: unknown[]) => unknown;

export interface FunctionLoaderOptions {
  /** Compiled closures kept, least recently used evicted first. Default 1000. */
  maxCachedClosures?: number;
  /** Directory bare specifiers (`import('pkg')`, `moduleRef('pkg', ...)`) resolve from. Default: the app's root ({@link appRoot}). */
  resolveFrom?: string;
}

interface CachedClosure {
  readonly source: string;
  readonly fn: LoadedFunction;
  /** Called since it was cached or last passed over by eviction. */
  used: boolean;
}

/** A module's namespace object. */
export type Namespace = Record<string, unknown>;

/** Errors of Node's loader that mean "no such module" rather than "the module failed". */
const NOT_FOUND_CODES = new Set(['ERR_MODULE_NOT_FOUND', 'ERR_PACKAGE_PATH_NOT_EXPORTED', 'ERR_UNSUPPORTED_DIR_IMPORT']);
/** The file closures and imports by name are resolved from, inside the app's root. */
const REFERRER_NAME = '[flame-fn].js';

/**
 * esbuild's `keepNames` (tsx, and bundlers built on esbuild) wraps named functions in
 * `__name(fn, "name")`, a helper of the compiled file; shipped closures get this one.
 */
function __name<T>(target: T, value: string): T {
  return Object.defineProperty(target, 'name', { value, configurable: true });
}

export class FunctionLoader {
  readonly #maxClosures: number;
  readonly #root: string;
  /** Doubles as the referrer of dynamic imports: a `file:` URL makes bare specifiers resolve from the root. */
  readonly #referrer: string;
  /**
   * Compiled closures by hash. Recency is a flag set on a hit (second chance on eviction), not a
   * delete and re-insert: a hit is on every call, an eviction only when a new closure arrives.
   */
  readonly #closures = new Map<string, CachedClosure>();
  /**
   * Compiled closures by the id their parent gave them (a call sends only the id once this runner
   * has the closure), oldest first; bounded like the closures.
   */
  readonly #byId = new Map<number, { readonly fn: LoadedFunction; readonly hash: string }>();
  readonly #modules = new Map<string, Promise<Namespace>>();
  #importer: ((specifier: string) => Promise<Namespace>) | undefined;

  constructor(options: FunctionLoaderOptions = {}) {
    this.#maxClosures = Math.max(1, options.maxCachedClosures ?? 1000);
    this.#root = options.resolveFrom ?? appRoot();
    this.#referrer = pathToFileURL(join(this.#root, REFERRER_NAME)).href;
  }

  /** The folder bare specifiers resolve from. */
  get root(): string {
    return this.#root;
  }

  /** Where a shipped function's code lives, as stack traces name it (best effort, for attribution). */
  origin(shipped: ShippedFunction | number): string {
    if (typeof shipped === 'number') {
      const known = this.#byId.get(shipped);
      return known === undefined ? '' : closureUrl(known.hash);
    }
    if (shipped?.kind === 'closure') return closureUrl(String(shipped.hash));
    // A bare specifier cannot be told apart in a stack trace; a URL can.
    if (shipped?.kind === 'module' && typeof shipped.module === 'string' && URL.canParse(shipped.module)) return shipped.module;
    return '';
  }

  /**
   * Resolves a shipped function to a callable. Always asynchronous (even for a cached closure,
   * where it costs one microtask), so bad input is always a rejection with a FlameError.
   */
  async load(shipped: ShippedFunction): Promise<LoadedFunction> {
    return this.cached(shipped) ?? this.#load(shipped);
  }

  /**
   * The compiled closure for `shipped` if it is cached (with the same source), else undefined:
   * the call path's synchronous fast path, before {@link load}.
   */
  cached(shipped: ShippedFunction | number): LoadedFunction | undefined {
    if (typeof shipped === 'number') return this.#byId.get(shipped)?.fn;
    if (typeof shipped !== 'object' || shipped === null || shipped.kind !== 'closure') return undefined;
    const cached = this.#closures.get(shipped.hash);
    // The same hash with another source is refused by the slow path.
    if (cached === undefined || cached.source !== shipped.source) return undefined;
    cached.used = true;
    this.#remember(shipped, cached.fn);
    return cached.fn;
  }

  /** A closure that came in full with its parent's id: later calls name it by the id. */
  #remember(shipped: ShippedFunction & { kind: 'closure' }, fn: LoadedFunction): void {
    const { id } = shipped;
    if (typeof id !== 'number' || this.#byId.has(id)) return;
    if (this.#byId.size >= this.#maxClosures) this.#byId.delete(this.#byId.keys().next().value as number);
    this.#byId.set(id, { fn, hash: shipped.hash });
  }

  async #load(shipped: ShippedFunction): Promise<LoadedFunction> {
    if (typeof shipped !== 'object' || shipped === null) throw new ProtocolError('shipped function is not an object');
    if (shipped.kind === 'closure' && typeof shipped.source === 'string' && typeof shipped.hash === 'string') {
      const fn = this.#closure(shipped.source, shipped.hash);
      this.#remember(shipped, fn);
      return fn;
    }
    if (shipped.kind === 'module' && typeof shipped.module === 'string' && typeof shipped.export === 'string') {
      return this.#export(shipped.module, shipped.export);
    }
    throw new ProtocolError('shipped function is neither a closure {source, hash} nor a module ref {module, export}');
  }

  #closure(source: string, hash: string): LoadedFunction {
    const cached = this.#closures.get(hash);
    if (cached !== undefined && cached.source === source) {
      cached.used = true;
      return cached.fn;
    }
    const digest = createHash('sha256').update(source).digest('hex');
    if (hash.length < 16 || !digest.startsWith(hash)) {
      throw new ProtocolError(`closure source does not match its hash ${hash}`, { details: { hash } });
    }
    let fn: unknown;
    try {
      // The directive matches the parent, which checked the source as (strict) module code.
      fn = this.#compile(`'use strict'; return (${source}\n)\n//# sourceURL=${closureUrl(hash)}`, ['__name'])(__name);
    } catch (error) {
      throw new ClosureError(`closure ${hash} does not compile on the runner: ${(error as Error).message}`, { cause: error, details: { hash } });
    }
    if (typeof fn !== 'function') throw new ClosureError(`closure ${hash} is not a function`, { details: { hash } });
    if (this.#closures.size >= this.#maxClosures) this.#evictOne();
    this.#closures.set(hash, { source, fn: fn as LoadedFunction, used: false });
    return fn as LoadedFunction;
  }

  /** Evicts the oldest closure not used since it was last passed over (each gets a second chance). */
  #evictOne(): void {
    // Bounded: after one pass every flag is cleared, so the second pass evicts.
    for (let i = 0; i <= 2 * this.#closures.size; i++) {
      const [hash, entry] = this.#closures.entries().next().value as [string, CachedClosure];
      this.#closures.delete(hash);
      if (!entry.used) return;
      entry.used = false;
      this.#closures.set(hash, entry);
    }
  }

  async #export(module: string, exportName: string): Promise<LoadedFunction> {
    const exports = await this.importModule(module);
    const fn = exports[exportName];
    if (typeof fn === 'function') return fn as LoadedFunction;
    const available = Object.keys(exports).filter((name) => typeof exports[name] === 'function');
    throw new ModuleRefError(
      `module "${module}" has no function export "${exportName}"${exportName in exports ? ` (it is a ${typeof fn})` : ''}; ` +
        `its function exports: ${available.length > 0 ? available.join(', ') : '(none)'}`,
      { details: { module, export: exportName, available } },
    );
  }

  /**
   * Imports a module by specifier with the runner's one rule: a URL (`file:`, `node:`) as it is,
   * a bare name from the app's root. Cached; a failure (not cached, so a fixed deploy is picked
   * up) is a ModuleRefError naming the module and where it was looked up.
   */
  importModule(module: string): Promise<Namespace> {
    let namespace = this.#modules.get(module);
    if (namespace === undefined) {
      namespace = this.#import(module);
      this.#modules.set(module, namespace);
      namespace.catch(() => this.#modules.delete(module));
    }
    return namespace;
  }

  /**
   * The ModuleRefError for an error thrown by an `import()` inside a closure (resolved from the
   * app's root), or undefined when `error` is something else.
   */
  importFailure(error: unknown): ModuleRefError | undefined {
    if (isFlameError(error) || typeof error !== 'object' || error === null) return undefined;
    const { code, message } = error as { code?: unknown; message?: unknown };
    if (typeof code !== 'string' || !NOT_FOUND_CODES.has(code) || typeof message !== 'string' || !message.includes(REFERRER_NAME)) return undefined;
    const module = /(?:package|module|directory) '([^']+)'/.exec(message)?.[1] ?? 'a module';
    return this.#notFound(module, error);
  }

  async #import(module: string): Promise<Namespace> {
    try {
      // Bare specifiers go through a script whose filename is the referrer; URLs need no resolution.
      if (URL.canParse(module)) return (await dynamicImport(module)) as Namespace;
      this.#importer ??= this.#compile('return import(specifier)', ['specifier']) as (specifier: string) => Promise<Namespace>;
      return await this.#importer(module);
    } catch (error) {
      if (isFlameError(error)) throw error; // also one of the app's copy of flame-actors
      const code = (error as { code?: unknown }).code;
      if (typeof code === 'string' && NOT_FOUND_CODES.has(code)) throw this.#notFound(module, error);
      const reason = error instanceof Error ? error.message : String(error);
      throw new ModuleRefError(`module "${module}" failed to load on the runner: ${reason}`, { cause: error, details: { module, root: this.#root } });
    }
  }

  #notFound(module: string, error: unknown): ModuleRefError {
    const reason = error instanceof Error ? error.message : String(error);
    const where = URL.canParse(module) ? '' : `, looked up from ${this.#root} (the app's root: its node_modules and those of the folders above)`;
    return new ModuleRefError(
      `module "${module}" was not found on the runner${where}: ${reason}; a module a runner imports must exist on the runner (same image/code as the parent)`,
      { cause: error, details: { module, root: this.#root } },
    );
  }

  /** A function whose dynamic imports resolve from the app's root, through Node's own loader. */
  #compile(code: string, params: string[]): (...args: unknown[]) => unknown {
    const fn = vm.compileFunction(code, params, { filename: this.#referrer, importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER });
    primeLoader();
    return fn as (...args: unknown[]) => unknown;
  }
}

let primed = false;

/**
 * Node 20 prints "ExperimentalWarning: vm.USE_MAIN_CONTEXT_DEFAULT_LOADER" on the first dynamic
 * import through such a function, into the app's stderr, although nothing experimental is asked
 * of the app. The warning is emitted synchronously, once per process: one import of a builtin,
 * with that single warning filtered out, uses it up.
 */
function primeLoader(): void {
  if (primed) return;
  primed = true;
  const probe = vm.compileFunction('return import("node:path")', [], { importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER });
  const emit = process.emitWarning;
  process.emitWarning = function (this: unknown, warning: string | Error, ...rest: unknown[]) {
    const text = typeof warning === 'string' ? warning : warning?.message;
    if (typeof text === 'string' && text.includes('vm.USE_MAIN_CONTEXT_DEFAULT_LOADER')) return;
    return (emit as (...args: unknown[]) => void).call(process, warning, ...rest);
  } as typeof process.emitWarning;
  try {
    void (probe() as Promise<unknown>).catch(() => {});
  } finally {
    process.emitWarning = emit;
  }
}

/** The name a closure has in stack traces. */
function closureUrl(hash: string): string {
  return `flame://fn/${hash}.js`;
}
