import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeKvCommand, encodeKvCommand, parseKvCommand } from '../../src/state/kv-commands.js';
import { validateKey, validateValue, type KvCommand } from '../../src/state/kv-types.js';
import { KvStore } from '../../src/state/kv.js';

describe('KV command codec', () => {
  it('round-trips every command shape and drops undefined optional fields', () => {
    const commands: KvCommand[] = [
      { op: 'put', key: 'a', value: 'x' },
      { op: 'put', key: 'a', value: '', ifVersion: 0 },
      { op: 'delete', key: 'a', ifVersion: 7 },
      { op: 'delete', key: 'a' },
      {
        op: 'txn',
        compares: [{ key: 'a', version: 0 }],
        ops: [
          { op: 'put', key: 'a', value: 'y' },
          { op: 'delete', key: 'b' },
        ],
      },
    ];
    for (const cmd of commands) assert.deepEqual(decodeKvCommand(encodeKvCommand(cmd)), cmd);
    assert.deepEqual(Object.keys(parseKvCommand({ op: 'delete', key: 'a', ifVersion: undefined })), [
      'op',
      'key',
    ]);
  });

  it('names the offending field in the error', () => {
    assert.throws(() => parseKvCommand({ op: 'txn', compares: [{ key: 'a', version: -1 }], ops: [] }), {
      code: 'HA_ERR_BAD_REQUEST',
      message: /^compares\[0\]\.version:/,
    });
    assert.throws(() => parseKvCommand({ op: 'txn', compares: [], ops: [{ op: 'put', key: 'a' }] }), {
      message: /^ops\[0\]\.value:/,
    });
  });

  it('validateKey and validateValue return a reason or null', () => {
    assert.equal(validateKey('cfg/service.yaml'), null);
    assert.match(validateKey('a\tb') ?? '', /control/);
    assert.match(validateKey('\ud800') ?? '', /surrogate/);
    assert.equal(validateValue('multi\nline'), null);
    assert.match(validateValue(5) ?? '', /string/);
  });

  it('apply never throws on random or mutated command bytes (seeded)', () => {
    const seed = 0x5eed;
    let state = seed;
    const nextByte = (): number => {
      // xorshift32: deterministic so that a failure replays.
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return (state >>> 0) & 0xff;
    };
    const valid = encodeKvCommand({
      op: 'txn',
      compares: [{ key: 'a', version: 0 }],
      ops: [{ op: 'put', key: 'a', value: 'x' }],
    });
    const store = new KvStore();
    for (let i = 0; i < 3000; i++) {
      let data: Uint8Array;
      if (i % 2 === 0) {
        data = Uint8Array.from({ length: nextByte() % 40 }, nextByte);
      } else {
        data = Uint8Array.from(valid);
        data[nextByte() % data.length] = nextByte();
      }
      const result = store.apply(i + 1, data);
      assert.equal(typeof result.ok, 'boolean', `seed ${seed} iteration ${i}`);
    }
  });
});
