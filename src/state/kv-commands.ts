// Wire codec of KV commands. A command is proposed by one node and applied from its bytes by
// every node, so decoding is strict: any field that is missing, mistyped, out of bounds or unknown
// refuses the whole command (HA_ERR_BAD_REQUEST, naming the field). Unknown fields are refused
// rather than ignored so that a node never silently applies a command it only half understands.
import { Packr, Unpackr } from 'msgpackr';
import { HaError } from '../errors.js';
import {
  describeType,
  kvTxnComparesMax,
  kvTxnOpsMax,
  validateKey,
  validateValue,
  validateVersion,
  type KvCommand,
  type KvCompare,
  type KvTxnOp,
} from './kv-types.js';

// Records (msgpackr's structure extension) would make bytes depend on encoder history; plain maps
// keep one encoding per command.
const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

/** Encodes a command; it is validated first, so a bad command never reaches the log. */
export function encodeKvCommand(cmd: KvCommand): Uint8Array {
  const valid = parseKvCommand(cmd);
  return packr.pack(valid);
}

/** Decodes and validates command bytes; throws HaError('HA_ERR_BAD_REQUEST') on anything else. */
export function decodeKvCommand(data: Uint8Array): KvCommand {
  let raw: unknown;
  try {
    raw = unpackr.unpack(data);
  } catch (err) {
    // The decoder's message may quote the decoded data: keep the result small.
    const reason = String((err as Error).message).slice(0, 120);
    throw badRequest(`command is not valid MessagePack: ${reason}`);
  }
  return parseKvCommand(raw);
}

/**
 * Checks that `raw` (decoded bytes or a parsed JSON body) is a well-formed command and returns a
 * fresh copy holding only the known fields. Throws HaError('HA_ERR_BAD_REQUEST') naming the field.
 */
export function parseKvCommand(raw: unknown): KvCommand {
  const obj = expectObject(raw, 'command');
  switch (obj.op) {
    case 'put': {
      expectFields(obj, 'command', ['op', 'key', 'value', 'ifVersion']);
      const key = expectKey(obj.key, 'key');
      const value = expectValue(obj.value, 'value');
      const ifVersion = optionalVersion(obj.ifVersion, 'ifVersion');
      return ifVersion === undefined ? { op: 'put', key, value } : { op: 'put', key, value, ifVersion };
    }
    case 'delete': {
      expectFields(obj, 'command', ['op', 'key', 'ifVersion']);
      const key = expectKey(obj.key, 'key');
      const ifVersion = optionalVersion(obj.ifVersion, 'ifVersion');
      return ifVersion === undefined ? { op: 'delete', key } : { op: 'delete', key, ifVersion };
    }
    case 'txn': {
      expectFields(obj, 'command', ['op', 'compares', 'ops']);
      const compares = expectArray(obj.compares, 'compares', kvTxnComparesMax).map(parseCompare);
      const ops = expectArray(obj.ops, 'ops', kvTxnOpsMax).map(parseTxnOp);
      // One write per key per revision keeps history and versions unambiguous.
      const seen = new Set<string>();
      ops.forEach((op, i) => {
        if (seen.has(op.key))
          throw badRequest(`ops[${i}].key: duplicate key in one txn: ${JSON.stringify(op.key)}`);
        seen.add(op.key);
      });
      return { op: 'txn', compares, ops };
    }
    default:
      throw badRequest(`op: expected 'put', 'delete' or 'txn', got ${describeOp(obj.op)}`);
  }
}

function parseCompare(raw: unknown, i: number): KvCompare {
  const field = `compares[${i}]`;
  const obj = expectObject(raw, field);
  expectFields(obj, field, ['key', 'version']);
  const key = expectKey(obj.key, `${field}.key`);
  const problem = validateVersion(obj.version);
  if (problem !== null) throw badRequest(`${field}.version: ${problem}`);
  return { key, version: obj.version as number };
}

function parseTxnOp(raw: unknown, i: number): KvTxnOp {
  const field = `ops[${i}]`;
  const obj = expectObject(raw, field);
  if (obj.op === 'put') {
    expectFields(obj, field, ['op', 'key', 'value']);
    return {
      op: 'put',
      key: expectKey(obj.key, `${field}.key`),
      value: expectValue(obj.value, `${field}.value`),
    };
  }
  if (obj.op === 'delete') {
    expectFields(obj, field, ['op', 'key']);
    return { op: 'delete', key: expectKey(obj.key, `${field}.key`) };
  }
  throw badRequest(`${field}.op: expected 'put' or 'delete', got ${describeOp(obj.op)}`);
}

function expectObject(raw: unknown, field: string): Record<string, unknown> {
  if (
    typeof raw !== 'object' ||
    raw === null ||
    Array.isArray(raw) ||
    Object.getPrototypeOf(raw) !== Object.prototype
  ) {
    throw badRequest(`${field}: expected an object, got ${describeType(raw)}`);
  }
  return raw as Record<string, unknown>;
}

function expectFields(obj: Record<string, unknown>, field: string, allowed: readonly string[]): void {
  for (const name of Object.keys(obj)) {
    if (!allowed.includes(name)) throw badRequest(`${field}: unknown field ${JSON.stringify(name)}`);
  }
}

function expectArray(raw: unknown, field: string, lengthMax: number): unknown[] {
  if (!Array.isArray(raw)) throw badRequest(`${field}: expected an array, got ${describeType(raw)}`);
  if (raw.length > lengthMax) throw badRequest(`${field}: at most ${lengthMax} items, got ${raw.length}`);
  return raw;
}

function expectKey(raw: unknown, field: string): string {
  const problem = validateKey(raw);
  if (problem !== null) throw badRequest(`${field}: ${problem}`);
  return raw as string;
}

function expectValue(raw: unknown, field: string): string {
  const problem = validateValue(raw);
  if (problem !== null) throw badRequest(`${field}: ${problem}`);
  return raw as string;
}

function optionalVersion(raw: unknown, field: string): number | undefined {
  if (raw === undefined) return undefined;
  const problem = validateVersion(raw);
  if (problem !== null) throw badRequest(`${field}: ${problem}`);
  return raw as number;
}

function describeOp(op: unknown): string {
  return typeof op === 'string' ? JSON.stringify(op.slice(0, 32)) : describeType(op);
}

function badRequest(message: string): HaError {
  return new HaError('HA_ERR_BAD_REQUEST', message);
}
