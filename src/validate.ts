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

/**
 * Edit distance between two option names (insertions, deletions, substitutions, and swaps of
 * neighbours, each costing 1), compared case-insensitively: `maxConcurency`, `maxconcurrency`
 * and `maxConcurrnecy` are each 1 from `maxConcurrency`.
 */
export function editDistance(a: string, b: string): number {
  a = a.toLowerCase();
  b = b.toLowerCase();
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/** The known name an unknown one most likely misspells: within a third of its length (at least 2 edits), else none. */
export function closest(name: string, known: readonly string[]): string | undefined {
  if (name.length > 64) return undefined;
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1;
  for (const candidate of known) {
    const distance = editDistance(name, candidate);
    if (distance < bestDistance && distance < name.length) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
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
        const suggestion = closest(key, known);
        throw new InvalidOptionError(
          `${where}: unknown option "${key}"; allowed options are: ${[...known].sort().join(', ')}${suggestion ? `. Did you mean "${suggestion}"?` : ''}`,
          { option: key, ...(suggestion ? { suggestion } : {}), details: { allowed: [...known] } },
        );
      }
    }
  }

  fail(key: string, expected: string): never {
    throw new InvalidOptionError(
      `${this.#where}: option "${key}" must be ${expected} (got ${show(this.#input[key])})`,
      { option: key, expected },
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
