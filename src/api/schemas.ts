// Validation at the HTTP edge (DESIGN.md §7): every request body, query parameter and key is
// checked here before the backend sees it. A failure names the field and what was expected, and
// nothing changes. Inside the server, values that passed are trusted.
import { Ajv, type ErrorObject, type JSONSchemaType } from 'ajv';
import { HaError } from '../errors.js';
import { kvValueBytesMax, validateKey as validateKvKey, validateValue } from '../state/kv-types.js';
import type { Consistency } from './backend.js';

/** Longest node id accepted in a leader-transfer request, in characters. */
export const nodeIdCharsMax = 256;

/**
 * Checks a key already decoded from its path segment, with the KV store's own rule, so that a bad
 * key is refused before it costs a log entry.
 */
export function validateKey(key: string): void {
  const reason = validateKvKey(key);
  if (reason !== null) throw badRequest('key', reason);
}

/** Decodes one URL-encoded path segment into a key and validates it. */
export function decodeKeySegment(segment: string): string {
  let key: string;
  try {
    key = decodeURIComponent(segment);
  } catch {
    throw badRequest('key', 'key: expected a valid URL-encoded UTF-8 path segment');
  }
  validateKey(key);
  return key;
}

export interface PutBody {
  value: string;
  ifVersion?: number;
}
export interface DeleteBody {
  ifVersion?: number;
}
export interface TransferBody {
  to?: string;
}

// Versions are log-derived counters: integers from 0 up, and exact in a JSON number.
const versionSchema = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } as const;

const putBodySchema: JSONSchemaType<PutBody> = {
  type: 'object',
  properties: {
    // The byte bound is checked after validation (maxLength counts characters, not bytes).
    value: { type: 'string' },
    ifVersion: { ...versionSchema, nullable: true },
  },
  required: ['value'],
  additionalProperties: false,
};

const deleteBodySchema: JSONSchemaType<DeleteBody> = {
  type: 'object',
  properties: { ifVersion: { ...versionSchema, nullable: true } },
  required: [],
  additionalProperties: false,
};

const transferBodySchema: JSONSchemaType<TransferBody> = {
  type: 'object',
  properties: { to: { type: 'string', minLength: 1, maxLength: nodeIdCharsMax, nullable: true } },
  required: [],
  additionalProperties: false,
};

// allErrors off: the first problem is enough to report, and the work per request stays bounded.
const ajv = new Ajv({ allErrors: false, strict: true });

function bodyValidator<T>(schema: JSONSchemaType<T>, fields: readonly string[]): (body: unknown) => T {
  const validate = ajv.compile(schema);
  return (body) => {
    if (!validate(body)) throw schemaError(validate.errors, fields);
    return body;
  };
}

const validatePut = bodyValidator(putBodySchema, ['value', 'ifVersion']);
const validateDelete = bodyValidator(deleteBodySchema, ['ifVersion']);
const validateTransfer = bodyValidator(transferBodySchema, ['to']);

/** `undefined` stands for an absent body. */
export function parsePutBody(body: unknown): PutBody {
  if (body === undefined) throw badRequest('body', 'body: expected a JSON object with "value" (string)');
  const put = validatePut(body);
  const bytes = Buffer.byteLength(put.value, 'utf8');
  if (bytes > kvValueBytesMax) {
    throw new HaError(
      'HA_ERR_PAYLOAD_TOO_LARGE',
      `body.value: expected at most ${kvValueBytesMax} bytes of UTF-8, got ${bytes}`,
      { field: 'body.value' },
    );
  }
  const reason = validateValue(put.value);
  if (reason !== null) throw badRequest('body.value', `body.${reason}`);
  return put;
}

export function parseDeleteBody(body: unknown): DeleteBody {
  return body === undefined ? {} : validateDelete(body);
}

export function parseTransferBody(body: unknown): TransferBody {
  return body === undefined ? {} : validateTransfer(body);
}

/**
 * Returns the query parameters of a route, refusing any it does not know and any given twice
 * (a repeated parameter has no single meaning).
 */
export function parseQuery(params: URLSearchParams, allowed: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, value] of params) {
    if (!allowed.includes(name)) {
      const expected = allowed.length === 0 ? 'no query parameters' : `only ${allowed.join(', ')}`;
      throw badRequest(`query.${name}`, `query: unknown parameter "${name}"; expected ${expected}`);
    }
    if (out.has(name)) throw badRequest(`query.${name}`, `query.${name}: expected at most one value`);
    out.set(name, value);
  }
  return out;
}

export function parseConsistency(value: string | undefined): Consistency {
  if (value === undefined) return 'linearizable';
  if (value === 'linearizable' || value === 'stale') return value;
  throw badRequest(
    'query.consistency',
    `query.consistency: expected "linearizable" or "stale", got "${value}"`,
  );
}

/** A version given as a query parameter: decimal digits only. */
export function parseVersionParam(name: string, value: string): number {
  const n = /^[0-9]{1,16}$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n)) {
    throw badRequest(`query.${name}`, `query.${name}: expected a non-negative integer, got "${value}"`);
  }
  return n;
}

/** A page size given as a query parameter: decimal digits, from 1 to `limitMax`. */
export function parseLimitParam(value: string | undefined, limitDefault: number, limitMax: number): number {
  if (value === undefined) return limitDefault;
  const n = /^[0-9]{1,16}$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= limitMax)) {
    throw badRequest('query.limit', `query.limit: expected an integer from 1 to ${limitMax}, got "${value}"`);
  }
  return n;
}

/** A paging cursor: the last key of the previous page, so it must be a valid key. */
export function parseAfterParam(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const reason = validateKvKey(value);
  if (reason !== null) {
    throw badRequest('query.after', `query.after: expected the last key of a previous page; ${reason}`);
  }
  return value;
}

function badRequest(field: string, message: string): HaError {
  return new HaError('HA_ERR_BAD_REQUEST', message, { field });
}

/** Turns the first ajv error into a message that names the field and what was expected. */
function schemaError(errors: ErrorObject[] | null | undefined, fields: readonly string[]): HaError {
  const e = errors?.[0];
  if (e === undefined) return badRequest('body', 'body: invalid');
  const path = 'body' + e.instancePath.replace(/\//g, '.');
  switch (e.keyword) {
    case 'additionalProperties': {
      const field = `${path}.${String(e.params.additionalProperty)}`;
      return badRequest(field, `${field}: unknown field; expected only ${fields.join(', ')}`);
    }
    case 'required': {
      const field = `${path}.${String(e.params.missingProperty)}`;
      return badRequest(field, `${field}: required`);
    }
    case 'type':
      return badRequest(
        path,
        `${path}: expected ${path === 'body' ? 'a JSON object' : String(e.params.type)}`,
      );
    case 'minimum':
    case 'maximum':
      return badRequest(path, `${path}: expected an integer from 0 to ${Number.MAX_SAFE_INTEGER}`);
    default:
      return badRequest(path, `${path}: ${e.message ?? 'invalid'}`);
  }
}
