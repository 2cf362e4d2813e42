// CRC-32 (IEEE 802.3, the polynomial of zlib and PNG), table-driven. The core checks snapshot
// chunks with it; a runtime may pass a faster implementation of the same function
// (RaftOptions.crc32, e.g. node:zlib's), which test/raft/snapshot-chunks.test.ts checks agree.

const table = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** The CRC-32 of `data` continuing from `previous` (0 to start), as an unsigned integer. */
export function crc32(data: Uint8Array, previous = 0): number {
  let c = (previous ^ 0xffffffff) >>> 0;
  for (let i = 0; i < data.length; i++) c = table[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
