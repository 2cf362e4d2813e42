import type { FencingToken } from './types.js';

/**
 * Orders fencing tokens lexicographically by (term, index): negative if a < b, 0 if equal,
 * positive if a > b. A later leadership always has a higher term, so its token is higher.
 */
export function compareFencingTokens(a: FencingToken, b: FencingToken): number {
  if (a.term !== b.term) return a.term < b.term ? -1 : 1;
  if (a.index !== b.index) return a.index < b.index ? -1 : 1;
  return 0;
}
