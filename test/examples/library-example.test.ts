// Runs the library example (examples/library-example.ts) as its users would, as a child process,
// and checks what it prints: it must keep working as the library changes.
//
// Ports 20900-20902.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const exampleJs = fileURLToPath(new URL('../../examples/library-example.js', import.meta.url));
const basePort = 20900;
/** Start-up, an election, a few writes and reads, and a shutdown whose last hand-over times out. */
const runDeadlineMs = 60_000;

describe('examples/library-example', () => {
  it('elects a leader, writes on a follower, reads the value back and shuts down cleanly', async () => {
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>(
      (resolve, reject) => {
        execFile(
          process.execPath,
          [exampleJs, String(basePort)],
          { timeout: runDeadlineMs },
          (err, out, errOut) => {
            if (err && typeof err.code !== 'number') return reject(err);
            resolve({ code: err ? (err.code as number) : 0, stdout: out, stderr: errOut });
          },
        );
      },
    );
    const output = `stdout:\n${stdout}\nstderr:\n${stderr}`;
    assert.equal(code, 0, output);

    const leader = /^leader: (node-[123]) \(term (\d+)\)$/m.exec(stdout);
    assert.ok(leader, output);
    const put = /^put greeting on follower (node-[123]): version 1, revision 1$/m.exec(stdout);
    assert.ok(put, output);
    assert.notEqual(put[1], leader[1], 'the write was made on a follower');
    assert.match(stdout, new RegExp(`^read back on ${put[1]}: hello from ${put[1]} \\(version 1\\)$`, 'm'));
    assert.match(stdout, /^compare-and-set refused: .*\(HA_ERR_VERSION_MISMATCH\)$/m);
    assert.match(stdout, new RegExp(`^status of ${leader[1]}: role leader, term ${leader[2]},`, 'm'));
    assert.match(stdout, new RegExp(`^fencing token of ${leader[1]}: term ${leader[2]}, index \\d+$`, 'm'));
    assert.match(
      stdout,
      new RegExp(`^\\[node-[123]\\] leader-changed: ${leader[1]} leads in term ${leader[2]}$`, 'm'),
    );
    const next = /^after (node-[123]) stopped: leader (node-[123])$/m.exec(stdout);
    assert.ok(next, output);
    assert.equal(next[1], leader[1]);
    assert.notEqual(next[2], leader[1], 'the stopping leader handed over to another node');
    assert.match(stdout, /^done$/m);
  });
});
