import type { Prng } from './types.js';

/**
 * mulberry32: a 32-bit seeded generator. Not cryptographic; it only spreads election timeouts.
 * Same seed, same sequence: that is what lets the simulator replay a run.
 */
export function mulberry32(seed: number): Prng {
  let state = seed >>> 0;
  return {
    next(): number {
      state = (state + 0x6d2b79f5) >>> 0;
      let t = state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    },
  };
}
