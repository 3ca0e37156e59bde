/**
 * Runner side of shipping a function: compiles shipped closures and imports module refs.
 * Imports only types from the parent side, so that runners do not load the parser.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import vm from 'node:vm';
import { ClosureError, FlameError, ModuleRefError, ProtocolError } from '../errors.js';
import type { ShippedFunction } from '../flame/fn-ref.js';

/** A shipped function, ready to call with the call's arguments. */
export type LoadedFunction = (...args: unknown[]) => unknown;

export interface FunctionLoaderOptions {
  /** Compiled closures kept, least recently used evicted first. Default 1000. */
  maxCachedClosures?: number;
  /** Directory bare specifiers (`import('pkg')`, `moduleRef('pkg', ...)`) resolve from. Default `process.cwd()`. */
  resolveFrom?: string;
}

type Namespace = Record<string, unknown>;

export class FunctionLoader {
  readonly #maxClosures: number;
  /** Doubles as the referrer of dynamic imports: a `file:` URL makes bare specifiers resolve from `resolveFrom`. */
  readonly #referrer: string;
  readonly #closures = new Map<string, { source: string; fn: LoadedFunction }>();
  readonly #modules = new Map<string, Promise<Namespace>>();
  #importer: ((specifier: string) => Promise<Namespace>) | undefined;

  constructor(options: FunctionLoaderOptions = {}) {
    this.#maxClosures = Math.max(1, options.maxCachedClosures ?? 1000);
    this.#referrer = pathToFileURL(join(options.resolveFrom ?? process.cwd(), '[flame-fn].js')).href;
  }

  /** Where a shipped function's code lives, as stack traces name it (best effort, for attribution). */
  origin(shipped: ShippedFunction): string {
    if (shipped?.kind === 'closure') return closureUrl(String(shipped.hash));
    if (shipped?.kind === 'module') return String(shipped.module);
    return '';
  }

  /**
   * Resolves a shipped function to a callable. Always asynchronous (even for a cached closure,
   * where it costs one microtask), so bad input is always a rejection with a FlameError.
   */
  async load(shipped: ShippedFunction): Promise<LoadedFunction> {
    if (typeof shipped !== 'object' || shipped === null) throw new ProtocolError('shipped function is not an object');
    if (shipped.kind === 'closure' && typeof shipped.source === 'string' && typeof shipped.hash === 'string') {
      return this.#closure(shipped.source, shipped.hash);
    }
    if (shipped.kind === 'module' && typeof shipped.module === 'string' && typeof shipped.export === 'string') {
      return this.#export(shipped.module, shipped.export);
    }
    throw new ProtocolError('shipped function is neither a closure {source, hash} nor a module ref {module, export}');
  }

  #closure(source: string, hash: string): LoadedFunction {
    const cached = this.#closures.get(hash);
    if (cached !== undefined && cached.source === source) {
      this.#closures.delete(hash);
      this.#closures.set(hash, cached);
      return cached.fn;
    }
    const digest = createHash('sha256').update(source).digest('hex');
    if (hash.length < 16 || !digest.startsWith(hash)) {
      throw new ProtocolError(`closure source does not match its hash ${hash}`, { details: { hash } });
    }
    let fn: unknown;
    try {
      // The directive matches the parent, which checked the source as (strict) module code.
      fn = vm.compileFunction(`'use strict'; return (${source}\n)\n//# sourceURL=${closureUrl(hash)}`, [], {
        filename: this.#referrer,
        importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
      })();
    } catch (error) {
      throw new ClosureError(`closure ${hash} does not compile on the runner: ${(error as Error).message}`, { cause: error, details: { hash } });
    }
    if (typeof fn !== 'function') throw new ClosureError(`closure ${hash} is not a function`, { details: { hash } });
    if (this.#closures.size >= this.#maxClosures) this.#closures.delete(this.#closures.keys().next().value as string);
    this.#closures.set(hash, { source, fn: fn as LoadedFunction });
    return fn as LoadedFunction;
  }

  async #export(module: string, exportName: string): Promise<LoadedFunction> {
    let namespace = this.#modules.get(module);
    if (namespace === undefined) {
      namespace = this.#import(module);
      this.#modules.set(module, namespace);
      // A failed import is not cached: the runner may be retried after a deploy fix.
      namespace.catch(() => this.#modules.delete(module));
    }
    const exports = await namespace;
    const fn = exports[exportName];
    if (typeof fn === 'function') return fn as LoadedFunction;
    const available = Object.keys(exports).filter((name) => typeof exports[name] === 'function');
    throw new ModuleRefError(
      `module "${module}" has no function export "${exportName}"${exportName in exports ? ` (it is a ${typeof fn})` : ''}; ` +
        `its function exports: ${available.length > 0 ? available.join(', ') : '(none)'}`,
      { details: { module, export: exportName, available } },
    );
  }

  async #import(module: string): Promise<Namespace> {
    try {
      // Bare specifiers go through a script whose filename is the referrer; URLs need no resolution.
      if (URL.canParse(module)) return (await import(module)) as Namespace;
      this.#importer ??= vm.compileFunction('return import(specifier)', ['specifier'], {
        filename: this.#referrer,
        importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
      }) as (specifier: string) => Promise<Namespace>;
      return await this.#importer(module);
    } catch (error) {
      if (error instanceof FlameError) throw error;
      const code = (error as { code?: unknown }).code;
      const reason = error instanceof Error ? error.message : String(error);
      const notFound = code === 'ERR_MODULE_NOT_FOUND' || code === 'ERR_PACKAGE_PATH_NOT_EXPORTED' || code === 'ERR_UNSUPPORTED_DIR_IMPORT';
      throw new ModuleRefError(
        notFound
          ? `module "${module}" was not found on the runner (${reason}); a moduleRef must name a module that exists on the runner (same image/code as the parent)`
          : `module "${module}" failed to load on the runner: ${reason}`,
        { cause: error, details: { module } },
      );
    }
  }
}

/** The name a closure has in stack traces. */
function closureUrl(hash: string): string {
  return `flame://fn/${hash}.js`;
}
