// Durations in configuration: an integer with a unit ("50ms", "1s", "2m"), or a bare number of
// milliseconds. Only whole milliseconds: the runtime converts them to ticks, and fractions would
// only hide rounding from the operator.
import { HaError } from '../errors.js';

/** The longest duration any field accepts; fields impose tighter bounds of their own. */
export const durationMsMax = 24 * 60 * 60 * 1000;

export const durationExpected = 'a duration like "50ms" or "1s"';

const unitMs = { ms: 1, s: 1000, m: 60_000 } as const;
// Digits are bounded so that the multiplication below cannot leave the safe-integer range.
const durationPattern = /^(\d{1,9})(ms|s|m)$/;

/**
 * The duration in milliseconds, or null when `value` is not a duration. Bounded to
 * [0, durationMsMax].
 */
export function durationMsOrNull(value: unknown): number | null {
  let ms: number;
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) return null;
    ms = value;
  } else if (typeof value === 'string') {
    const match = durationPattern.exec(value.trim());
    if (match === null) return null;
    ms = Number(match[1]) * unitMs[match[2] as keyof typeof unitMs];
  } else {
    return null;
  }
  return ms >= 0 && ms <= durationMsMax ? ms : null;
}

/** Parses a duration or throws HA_ERR_BAD_REQUEST naming `field`. */
export function parseDurationMs(text: string | number, field: string): number {
  const ms = durationMsOrNull(text);
  if (ms === null) {
    throw new HaError(
      'HA_ERR_BAD_REQUEST',
      `field "${field}": expected ${durationExpected} (at most 24h), got ${JSON.stringify(text)}`,
      { field },
    );
  }
  return ms;
}
