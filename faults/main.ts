// `npm run test:faults [-- --minutes M] [--seed S] [--clients C]`: fault tests against real agent
// processes (DESIGN.md §8, docs/fault-tests.md). Run as root: the outer process makes a network
// namespace and runs this same file inside it with --inside; that inner run does the work.
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runOutside } from './namespace.js';
import { freshSeed } from './random.js';
import { runInside } from './run.js';

const usage =
  'usage: node dist/faults/main.js [--minutes M (default 3)] [--seed S] [--clients C (default 6)]';
export const minutesMax = 120;
export const clientsMax = 32;

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        minutes: { type: 'string', default: '3' },
        seed: { type: 'string' },
        clients: { type: 'string', default: '6' },
        inside: { type: 'boolean', default: false },
        netns: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    console.error(`${(err as Error).message}\n${usage}`);
    return 2;
  }
  const minutes = Number(values.minutes);
  const clients = Number(values.clients);
  const seed = values.seed === undefined ? freshSeed() : Number(values.seed);
  if (!(minutes > 0 && minutes <= minutesMax))
    return badArg(`--minutes: expected a number in (0, ${minutesMax}]`);
  if (!(Number.isInteger(clients) && clients >= 1 && clients <= clientsMax)) {
    return badArg(`--clients: expected an integer in [1, ${clientsMax}]`);
  }
  if (!(Number.isInteger(seed) && seed >= 0 && seed <= 0xffffffff))
    return badArg('--seed: expected a 32-bit unsigned integer');

  if (!values.inside) {
    return runOutside(
      ['--minutes', String(minutes), '--seed', String(seed), '--clients', String(clients)],
      minutes,
    );
  }
  // The inner run flushes iptables: make sure that is the test's namespace, never the host's.
  const expected = values.netns;
  const actual = currentNamespace();
  if (expected === undefined || actual !== expected) {
    console.error(
      `--inside must run in the namespace named by --netns (expected ${expected ?? '-'}, in ${actual ?? 'none'})`,
    );
    return 2;
  }
  return runInside({
    minutes,
    seed,
    clients,
    evidenceDir: join(repoRoot, 'fault-evidence'),
    netns: expected,
  });
}

function badArg(message: string): number {
  console.error(`${message}\n${usage}`);
  return 2;
}

/** The name of the network namespace this process is in, or null for the host's (unnamed) one. */
function currentNamespace(): string | null {
  try {
    const name = execFileSync('ip', ['netns', 'identify', String(process.pid)], { encoding: 'utf8' }).trim();
    return name === '' ? null : name;
  } catch {
    return null;
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(2);
  },
);
