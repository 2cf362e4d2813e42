// Drives a KvStore through encoded commands at consecutive log indexes, as the runtime would.
import { encodeKvCommand } from '../../src/state/kv-commands.js';
import type { KvCommand, KvResult } from '../../src/state/kv-types.js';
import { KvStore, type KvStoreOptions } from '../../src/state/kv.js';

export class KvDriver {
  readonly store: KvStore;

  constructor(options: KvStoreOptions = {}, store?: KvStore) {
    this.store = store ?? new KvStore(options);
  }

  run(cmd: KvCommand): KvResult {
    return this.store.apply(this.store.appliedIndex + 1, encodeKvCommand(cmd));
  }

  put(key: string, value: string, ifVersion?: number): KvResult {
    return this.run(
      ifVersion === undefined ? { op: 'put', key, value } : { op: 'put', key, value, ifVersion },
    );
  }

  del(key: string, ifVersion?: number): KvResult {
    return this.run(ifVersion === undefined ? { op: 'delete', key } : { op: 'delete', key, ifVersion });
  }

  raw(data: Uint8Array): KvResult {
    return this.store.apply(this.store.appliedIndex + 1, data);
  }
}

/** Every read the store offers, for comparing two stores. */
export function allReads(store: KvStore, keys: readonly string[]): unknown {
  return {
    revision: store.revision,
    appliedIndex: store.appliedIndex,
    size: store.size,
    list: store.list('', 10_000),
    gets: keys.map((k) => store.get(k)),
    histories: keys.map((k) => store.history(k)),
  };
}
