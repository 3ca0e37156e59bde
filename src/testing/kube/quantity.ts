/**
 * Resource quantities (`500m`, `1`, `128Mi`, `1.5Gi`, `2e3`) as the API writes them: exact
 * arithmetic (in nano units) and the canonical text Go's `resource.Quantity.String()` gives back,
 * which quota messages and status show (`1536Mi`, `1500m`, `2k`).
 */
const BINARY: Record<string, bigint> = { Ki: 1n << 10n, Mi: 1n << 20n, Gi: 1n << 30n, Ti: 1n << 40n, Pi: 1n << 50n, Ei: 1n << 60n };
const DECIMAL_EXPONENTS: Record<string, number> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
const NANO = 10n ** 9n;

export class Quantity {
  constructor(
    /** The value in units of 10^-9. */
    readonly nanos: bigint,
    readonly format: 'BinarySI' | 'DecimalSI',
  ) {}

  add(other: Quantity): Quantity {
    return new Quantity(this.nanos + other.nanos, this.format === 'BinarySI' || other.format === 'BinarySI' ? 'BinarySI' : 'DecimalSI');
  }

  compare(other: Quantity): number {
    return this.nanos === other.nanos ? 0 : this.nanos < other.nanos ? -1 : 1;
  }
}

/** Parses a quantity; throws a RangeError naming the text when it is not one. */
export function parseQuantity(text: string): Quantity {
  const match = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$/.exec(text.trim());
  if (!match) throw new RangeError(`quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$', got ${JSON.stringify(text)}`);
  const [, sign, number, suffix = ''] = match;
  const [whole = '0', fraction = ''] = number!.split('.');
  const digits = BigInt(`${whole || '0'}${fraction}`);
  let nanos: bigint;
  const binary = BINARY[suffix];
  if (binary !== undefined) nanos = (digits * binary * NANO) / 10n ** BigInt(fraction.length);
  else {
    const exponent = /^[eE]/.test(suffix) ? Number(suffix.slice(1)) : DECIMAL_EXPONENTS[suffix]!;
    const shift = exponent + 9 - fraction.length;
    nanos = shift >= 0 ? digits * 10n ** BigInt(shift) : digits / 10n ** BigInt(-shift);
  }
  return new Quantity(sign === '-' ? -nanos : nanos, binary !== undefined ? 'BinarySI' : 'DecimalSI');
}

/** The canonical text of a quantity, as the API server prints it. */
export function formatQuantity(quantity: Quantity): string {
  const negative = quantity.nanos < 0n;
  const nanos = negative ? -quantity.nanos : quantity.nanos;
  const sign = negative ? '-' : '';
  if (nanos === 0n) return '0';
  if (quantity.format === 'BinarySI' && nanos % NANO === 0n) {
    const bytes = nanos / NANO;
    for (const [suffix, size] of Object.entries(BINARY).reverse()) {
      if (bytes >= size && bytes % size === 0n) return `${sign}${bytes / size}${suffix}`;
    }
    if (bytes < 1024n) return `${sign}${bytes}`;
  }
  for (const [suffix, exponent] of Object.entries(DECIMAL_EXPONENTS).sort((a, b) => b[1] - a[1])) {
    const unit = 10n ** BigInt(exponent + 9);
    if (nanos % unit === 0n) return `${sign}${nanos / unit}${suffix}`;
  }
  return `${sign}${nanos}n`;
}
