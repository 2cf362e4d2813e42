// Operational errors: one table of stable codes, each with its HTTP status and meaning.
// docs/errors.md lists the same table; test/errors.test.ts keeps the two in step.

export const errorTable = {
  HA_ERR_BAD_REQUEST: {
    status: 400,
    meaning: 'The request is malformed or names an invalid field; nothing changed.',
  },
  HA_ERR_FORBIDDEN: { status: 403, meaning: 'The caller lacks the role this operation needs.' },
  HA_ERR_NOT_FOUND: { status: 404, meaning: 'The key (or other named object) does not exist.' },
  HA_ERR_METHOD_NOT_ALLOWED: {
    status: 405,
    meaning: 'The path exists but does not support this method; the Allow header lists those it does.',
  },
  HA_ERR_VERSION_MISMATCH: {
    status: 409,
    meaning: 'A compare-and-set condition failed: the current version differs from ifVersion.',
  },
  HA_ERR_CONFIG_CHANGE_PENDING: {
    status: 409,
    meaning: 'A membership change is still uncommitted; retry after it commits.',
  },
  HA_ERR_PAYLOAD_TOO_LARGE: { status: 413, meaning: 'The request body or value exceeds its size limit.' },
  HA_ERR_BUSY: {
    status: 429,
    meaning: 'A bounded queue is full (uncommitted entries, pending reads); retry later.',
  },
  HA_ERR_INTERNAL: { status: 500, meaning: 'An unexpected failure on this node.' },
  HA_ERR_STORAGE_CORRUPT: {
    status: 500,
    meaning: 'The node detected damaged durable state and refuses to serve from it.',
  },
  HA_ERR_NOT_LEADER: {
    status: 503,
    meaning:
      'This node is not the leader and could not forward the request; the error names the leader if known.',
  },
  HA_ERR_NO_QUORUM: { status: 503, meaning: 'No leader with a quorum answered within the request deadline.' },
  HA_ERR_TIMEOUT: {
    status: 503,
    meaning: 'The operation did not complete within its deadline; a write may or may not have taken effect.',
  },
  HA_ERR_TRANSFER_IN_PROGRESS: { status: 503, meaning: 'Leadership is being transferred; retry shortly.' },
  HA_ERR_SHUTTING_DOWN: { status: 503, meaning: 'The node is stopping.' },
} as const;

export type HaErrorCode = keyof typeof errorTable;

export const isHaErrorCode = (s: string): s is HaErrorCode => Object.hasOwn(errorTable, s);

export class HaError extends Error {
  readonly code: HaErrorCode;
  /** Extra machine-readable facts: the leader hint, the current version, the offending field. */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: HaErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'HaError';
    this.code = code;
    this.details = details;
  }

  get httpStatus(): number {
    return errorTable[this.code].status;
  }

  toJSON(): { error: { code: HaErrorCode; message: string } & Record<string, unknown> } {
    return { error: { code: this.code, message: this.message, ...this.details } };
  }
}
