// The mutation suite: every deliberately broken core of mutations.ts must be caught by the
// ordinary random workload within its seed bound. A mutation that survives its bound means the
// simulator has lost the teeth that would catch that bug: the suite fails and says which.
import { runSeed } from './run-seed.js';
import { mutationsByName, mutationNames, type MutationName } from './mutations.js';

export interface MutationResult {
  readonly name: MutationName;
  /** The first seed with a violation, or null if none within the bound. */
  readonly caughtAtSeed: number | null;
  readonly invariant: string | null;
  readonly seedsMax: number;
  readonly seconds: number;
}

/** Runs seeds 1.. until the first violation or the mutation's bound (or `seedsMax` if smaller). */
export function runMutation(name: MutationName, seedsMax?: number): MutationResult {
  const spec = mutationsByName[name];
  const bound = Math.min(seedsMax ?? spec.seedsMax, spec.seedsMax);
  const started = performance.now();
  for (let seed = 1; seed <= bound; seed++) {
    const r = runSeed({ seed, mutations: spec.mutations, steered: false });
    if (r.violation) {
      return {
        name,
        caughtAtSeed: seed,
        invariant: r.violation.invariant,
        seedsMax: spec.seedsMax,
        seconds: (performance.now() - started) / 1000,
      };
    }
  }
  return {
    name,
    caughtAtSeed: null,
    invariant: null,
    seedsMax: spec.seedsMax,
    seconds: (performance.now() - started) / 1000,
  };
}

export function runMutationSuite(onResult: (r: MutationResult) => void): MutationResult[] {
  const results: MutationResult[] = [];
  for (const name of mutationNames) {
    const r = runMutation(name);
    results.push(r);
    onResult(r);
  }
  return results;
}

export function describeResult(r: MutationResult): string {
  const head = `${r.name.padEnd(28)}`;
  if (r.caughtAtSeed === null) {
    return `${head} NOT CAUGHT in seeds 1..${r.seedsMax} (${r.seconds.toFixed(1)} s)`;
  }
  return (
    `${head} caught at seed ${String(r.caughtAtSeed).padStart(4)} of ${r.seedsMax} by ` +
    `${r.invariant} (${r.seconds.toFixed(1)} s)  replay: npm run sim -- --seed ${r.caughtAtSeed} --unsteered --verbose --mutation ${r.name}`
  );
}
