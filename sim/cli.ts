// npm run sim -- --seeds N [--from S] [--mutation NAME]   runs seeds S..S+N-1
// npm run sim -- --seed S --verbose [--mutation NAME]     replays one seed with its event trace
// npm run sim -- --mutations                             every mutation caught within its bound
import { parseArgs } from 'node:util';
import { runSeed } from './run-seed.js';
import type { Mutations } from '../src/raft/types.js';
import { knownMissesByName, mutationsByName } from './mutations.js';
import { describeResult, runMutationSuite } from './mutation-suite.js';

function main(): number {
  let args;
  try {
    args = parseArgs({
      options: {
        seeds: { type: 'string' },
        from: { type: 'string' },
        seed: { type: 'string' },
        verbose: { type: 'boolean', default: false },
        mutation: { type: 'string' },
        mutations: { type: 'boolean', default: false },
        unsteered: { type: 'boolean', default: false },
        'fault-ms': { type: 'string' },
        'stop-at-first': { type: 'boolean', default: false },
      },
      strict: true,
    }).values;
  } catch (err) {
    process.stderr.write(`sim: ${(err as Error).message}\n`);
    return 2;
  }
  if (args.mutations) {
    const started = performance.now();
    const results = runMutationSuite((r) => process.stdout.write(`${describeResult(r)}\n`));
    const missed = results.filter((r) => r.caughtAtSeed === null);
    const secs = (performance.now() - started) / 1000;
    process.stdout.write(
      `${results.length} mutations, ${results.length - missed.length} caught, ${missed.length} missed (${secs.toFixed(1)} s)\n`,
    );
    return missed.length === 0 ? 0 : 1;
  }
  const int = (name: string, v: string | undefined, dflt: number): number => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 0)
      throw new Error(`--${name}: expected a non-negative integer, got "${v}"`);
    return n;
  };
  let from: number;
  let count: number;
  let faultPhaseMs: number;
  try {
    from = int('seed', args.seed, int('from', args.from, 1));
    count = args.seed !== undefined ? 1 : int('seeds', args.seeds, 100);
    faultPhaseMs = int('fault-ms', args['fault-ms'], 3000);
  } catch (err) {
    process.stderr.write(`sim: ${(err as Error).message}\n`);
    return 2;
  }
  let mutations = undefined;
  if (args.mutation !== undefined) {
    const all: Record<string, { mutations: Mutations }> = { ...mutationsByName, ...knownMissesByName };
    const spec = all[args.mutation];
    if (spec === undefined) {
      process.stderr.write(`sim: --mutation: expected one of ${Object.keys(all).join(', ')}\n`);
      return 2;
    }
    mutations = spec.mutations;
  }
  const started = performance.now();
  let failures = 0;
  const seedsByInvariant = new Map<string, number[]>();
  let ops = 0;
  let faults = 0;
  let chunks = 0;
  let rewinds = 0;
  const mut = (args.unsteered ? ' --unsteered' : '') + (args.mutation ? ` --mutation ${args.mutation}` : '');
  for (let seed = from; seed < from + count; seed++) {
    const r = runSeed({ seed, verbose: args.verbose, mutations, faultPhaseMs, steered: !args.unsteered });
    ops += r.ops;
    faults += r.faults;
    chunks += r.snapshotChunks;
    rewinds += r.snapshotRewinds;
    if (args.verbose) for (const line of r.trace) process.stdout.write(`${line}\n`);
    if (r.violation) {
      failures++;
      const seeds = seedsByInvariant.get(r.violation.invariant) ?? [];
      seeds.push(seed);
      seedsByInvariant.set(r.violation.invariant, seeds);
      process.stdout.write(
        `seed ${seed}: ${r.violation.invariant} violated at ${r.violation.atMs.toFixed(3)} ms: ${r.violation.message}\n` +
          `  replay: npm run sim -- --seed ${seed} --verbose${mut}\n`,
      );
      if (args['stop-at-first']) {
        count = seed - from + 1;
        break;
      }
    }
  }
  const secs = (performance.now() - started) / 1000;
  process.stdout.write(
    `${ops} client ops, ${faults} faults, ${chunks} snapshot chunks (${rewinds} resumed), ${secs.toFixed(1)} s\n`,
  );
  for (const [invariant, seeds] of seedsByInvariant) {
    process.stdout.write(`  ${invariant}: ${seeds.length} (seeds ${seeds.join(' ')})\n`);
  }
  process.stdout.write(`${count} seeds, ${failures} violations\n`);
  return failures === 0 ? 0 : 1;
}

process.exitCode = main();
