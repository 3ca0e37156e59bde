/**
 * Options are validated once, at the public boundary, by an `OptionReader`: unknown keys and
 * bad values fail fast with an {@link InvalidOptionError} naming the option and what is allowed.
 */
import { InvalidOptionError } from './errors.js';

function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'bigint') return `${value}n`;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

export class OptionReader {
  readonly #where: string;
  readonly #input: Record<string, unknown>;

  /** `where` names the function, e.g. `Pool.start`; `known` lists every accepted key. */
  constructor(where: string, input: unknown, known: readonly string[]) {
    this.#where = where;
    if (input === undefined) input = {};
    if (typeof input !== 'object' || input === null || Array.isArray(input)) {
      throw new InvalidOptionError(`${where}: options must be an object (got ${show(input)})`);
    }
    this.#input = input as Record<string, unknown>;
    for (const key of Object.keys(this.#input)) {
      if (!known.includes(key)) {
        throw new InvalidOptionError(
          `${where}: unknown option "${key}"; allowed options are: ${[...known].sort().join(', ')}`,
          { details: { option: key, allowed: [...known] } },
        );
      }
    }
  }

  fail(key: string, expected: string): never {
    throw new InvalidOptionError(
      `${this.#where}: option "${key}" must be ${expected} (got ${show(this.#input[key])})`,
      { details: { option: key, expected } },
    );
  }

  has(key: string): boolean {
    return this.#input[key] !== undefined;
  }

  raw(key: string): unknown {
    return this.#input[key];
  }

  int(key: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.#input[key];
    if (v === undefined) return fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      this.fail(key, max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`);
    }
    return v;
  }

  /** A duration in milliseconds; `Infinity` is accepted when `allowInfinity`. */
  ms(key: string, fallback: number, { min = 0, allowInfinity = false } = {}): number {
    const v = this.#input[key];
    if (v === undefined) return fallback;
    if (allowInfinity && v === Infinity) return Infinity;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min) {
      this.fail(key, `a number of milliseconds >= ${min}${allowInfinity ? ' or Infinity' : ''}`);
    }
    return v;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.#input[key];
    if (v === undefined) return fallback;
    if (typeof v !== 'boolean') this.fail(key, 'true or false');
    return v;
  }

  string(key: string, fallback: string, pattern?: RegExp, describe?: string): string {
    const v = this.#input[key];
    if (v === undefined) return fallback;
    if (typeof v !== 'string' || v === '' || (pattern && !pattern.test(v))) {
      this.fail(key, describe ?? 'a non-empty string');
    }
    return v;
  }

  optionalString(key: string, pattern?: RegExp, describe?: string): string | undefined {
    return this.has(key) ? this.string(key, '', pattern, describe) : undefined;
  }

  oneOf<T extends string | boolean>(key: string, fallback: T, allowed: readonly T[]): T {
    const v = this.#input[key];
    if (v === undefined) return fallback;
    if (!allowed.includes(v as T)) this.fail(key, `one of ${allowed.map(show).join(', ')}`);
    return v as T;
  }

  fn<F extends (...args: never[]) => unknown>(key: string): F | undefined {
    const v = this.#input[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'function') this.fail(key, 'a function');
    return v as F;
  }
}
