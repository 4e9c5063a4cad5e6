/**
 * The few pieces of Python behaviour `pheutil` shows its users, reproduced so `blindml paillier`
 * accepts the same input text and writes the same bytes: `float(text)` parsing, `json.dumps`
 * with its default separators, and the `{:+.16f}` format used in the "Encrypting:" log line.
 *
 * @module
 */
import { EncodingError } from '../../errors.js';
import { pythonFloatRepr, roundShiftHalfEven, splitDouble } from '../../encoding/float.js';

// Python's float() grammar (ASCII digits only): digits may be grouped with single underscores,
// surrounding whitespace is ignored, and inf/infinity/nan are case-insensitive words.
const DIGITS = '\\d(?:_?\\d)*';
const FINITE_FLOAT = new RegExp(`^[+-]?(?:(?:${DIGITS})?\\.${DIGITS}|${DIGITS}\\.?)(?:[eE][+-]?${DIGITS})?$`);
const NON_FINITE_FLOAT = /^[+-]?(?:inf|infinity|nan)$/i;

/**
 * Parses text the way Python's `float(text)` does, but refuses what cannot be encrypted.
 *
 * @throws EncodingError for text Python would not parse, for nan and ±inf, and for finite text
 *   that overflows a double (Python would silently turn "1e400" into inf).
 */
export function parsePythonFloat(text: string): number {
  const trimmed = text.trim();
  if (NON_FINITE_FLOAT.test(trimmed)) {
    throw new EncodingError(`cannot use '${text}': only finite numbers can be encrypted or combined`);
  }
  if (!FINITE_FLOAT.test(trimmed)) throw new EncodingError(`could not convert string to float: '${text}'`);
  const value = Number(trimmed.replace(/_/g, ''));
  if (!Number.isFinite(value)) {
    throw new EncodingError(`cannot use '${text}': it is too large for a double (only finite numbers can be encrypted)`);
  }
  return value;
}

/**
 * Python's `'{:+.16f}'.format(x)`: the exact binary value rounded half-to-even at 16 decimals
 * (JavaScript's toFixed rounds ties away from zero and switches to exponents above 1e21).
 */
export function formatSignedFixed16(x: number): string {
  if (Number.isNaN(x)) return '+nan';
  if (!Number.isFinite(x)) return x > 0 ? '+inf' : '-inf';
  const { mantissa, exponent } = splitDouble(x);
  const abs = mantissa < 0n ? -mantissa : mantissa;
  const scaled = abs * 10n ** 16n;
  const q = exponent >= 0 ? scaled << BigInt(exponent) : roundShiftHalfEven(scaled, -exponent);
  const digits = q.toString().padStart(17, '0');
  const sign = x < 0 || Object.is(x, -0) ? '-' : '+';
  return `${sign}${digits.slice(0, -16)}.${digits.slice(-16)}`;
}

/** A value `pythonJsonDumps` can write: what JSON files of keys and ciphertexts contain. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/**
 * Python's `json.dumps(value)` with default settings: `", "` and `": "` separators, keys in
 * insertion order, and every character outside printable ASCII escaped as `\uXXXX`. Numbers are
 * written as Python writes the int or float JSON.parse made them from (keys and ciphertexts
 * hold only small ints; integers beyond 2^53 lost digits when they were parsed).
 */
export function pythonJsonDumps(value: JsonValue): string {
  if (value === null) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') return pythonJsonNumber(value);
  if (typeof value === 'string') return pythonJsonString(value);
  if (Array.isArray(value)) return `[${value.map(pythonJsonDumps).join(', ')}]`;
  const entries = Object.entries(value).map(([k, v]) => `${pythonJsonString(k)}: ${pythonJsonDumps(v)}`);
  return `{${entries.join(', ')}}`;
}

function pythonJsonNumber(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? 'Infinity' : '-Infinity';
  // JSON.parse gives one number type; Python had an int for text without "." or exponent,
  // which is what an integer-valued double most likely came from.
  if (Number.isInteger(x) && !Object.is(x, -0)) return BigInt(x).toString();
  return pythonFloatRepr(x);
}

const SHORT_ESCAPES: Readonly<Record<string, string>> = {
  '"': '\\"',
  '\\': '\\\\',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\b': '\\b',
  '\f': '\\f',
};

function pythonJsonString(s: string): string {
  // Iterating UTF-16 code units (not code points) matches Python, which escapes astral
  // characters as surrogate pairs when ensure_ascii is on.
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    const code = s.charCodeAt(i);
    const short = SHORT_ESCAPES[ch];
    if (short !== undefined) out += short;
    else if (code < 0x20 || code > 0x7e) out += `\\u${code.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}
