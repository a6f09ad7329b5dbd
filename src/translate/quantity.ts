/**
 * Kubernetes resource quantities (`250m`, `1.5Gi`, `1e3`, `12E`) to plain numbers.
 *
 * Grammar (k8s.io/apimachinery/pkg/api/resource, quantity.go):
 *   <quantity> ::= <signedNumber><suffix>
 *   <suffix>   ::= <binarySI> | <decimalExponent> | <decimalSI>
 *   binarySI   ::= Ki | Mi | Gi | Ti | Pi | Ei
 *   decimalSI  ::= n | u | m | "" | k | M | G | T | P | E
 *   decimalExponent ::= e<signedNumber> | E<signedNumber>
 * A number may be `1`, `1.`, `.5` or `0.5`. `E` alone is exa; `E` followed by digits is an exponent.
 *
 * Arithmetic is exact (BigInt numerator / denominator) so `1.1k` is 1100, not 1100.0000000000002,
 * and rounding up to whole bytes matches Quantity.Value(), which rounds up.
 */

const DECIMAL_SUFFIX: Readonly<Record<string, number>> = {
  n: -9,
  u: -6,
  m: -3,
  '': 0,
  k: 3,
  M: 6,
  G: 9,
  T: 12,
  P: 15,
  E: 18,
};

const BINARY_SUFFIX: Readonly<Record<string, number>> = { Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60 };

const QUANTITY = /^([+-]?)(\d*)(?:\.(\d*))?(Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?\d+|[numkMGTPE]?)$/;

/** value = numerator / denominator, exactly. */
interface Rational {
  numerator: bigint;
  denominator: bigint;
}

function parseRational(text: string): Rational | undefined {
  const match = QUANTITY.exec(text);
  if (!match) return undefined;
  const [, sign = '', whole = '', fraction = '', suffix = ''] = match;
  if (whole === '' && fraction === '') return undefined; // "", ".", "Mi"
  let numerator = BigInt(`${whole}${fraction}` || '0') * (sign === '-' ? -1n : 1n);
  let denominator = 10n ** BigInt(fraction.length);
  const binary = BINARY_SUFFIX[suffix];
  let exponent: number;
  if (binary !== undefined) {
    numerator *= 2n ** BigInt(binary);
    exponent = 0;
  } else if (/^[eE]./.test(suffix)) {
    exponent = Number(suffix.slice(1));
  } else {
    exponent = DECIMAL_SUFFIX[suffix] ?? 0;
  }
  // Exponents beyond this are nonsense for a resource and would make BigInt huge.
  if (Math.abs(exponent) > 64) return undefined;
  if (exponent >= 0) numerator *= 10n ** BigInt(exponent);
  else denominator *= 10n ** BigInt(-exponent);
  return { numerator, denominator };
}

/** The exact value of a quantity as a float (cores stay fractional: `250m` → 0.25). */
export function parseQuantity(text: string): number | undefined {
  const value = parseRational(text);
  if (!value) return undefined;
  // Divide in BigInt first so large integers do not lose the fraction to float rounding.
  const whole = value.numerator / value.denominator;
  const rest = value.numerator - whole * value.denominator;
  return Number(whole) + Number(rest) / Number(value.denominator);
}

/** CPU quantity in cores: `250m` → 0.25, `2` → 2. */
export function quantityToCores(text: string): number | undefined {
  return parseQuantity(text);
}

/** Memory quantity in whole bytes, rounded up like Quantity.Value(): `320Mi` → 335544320. */
export function quantityToBytes(text: string): number | undefined {
  const value = parseRational(text);
  if (!value) return undefined;
  const { numerator, denominator } = value;
  let whole = numerator / denominator;
  if (numerator % denominator !== 0n && numerator > 0n) whole += 1n;
  return Number(whole);
}
