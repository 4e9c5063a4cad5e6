/**
 * Small labelled assertions in the style of noble-curves: a TypeError for a value of the wrong
 * type, a RangeError for a value of the right type but outside its allowed range.
 *
 * @module
 */

/** Throws TypeError unless `value` is a bigint. */
export function assertBigInt(value: unknown, label: string): asserts value is bigint {
  if (typeof value !== 'bigint') {
    throw new TypeError(`${label} must be a bigint, got ${typeof value}`);
  }
}

/** Throws TypeError unless `value` is a safe integer (a JS number without fraction). */
export function assertSafeInteger(value: unknown, label: string): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    throw new TypeError(`${label} must be a safe integer, got ${String(value)}`);
  }
}

/** Throws RangeError unless `min <= value <= max`. */
export function assertInRange(value: bigint, min: bigint, max: bigint, label: string): void {
  if (value < min || value > max) {
    throw new RangeError(`${label} must be in [${min}, ${max}]`);
  }
}

/** Throws RangeError unless `value` is a positive integer. */
export function assertPositiveInteger(value: unknown, label: string): asserts value is number {
  assertSafeInteger(value, label);
  if (value <= 0) throw new RangeError(`${label} must be positive, got ${value}`);
}
