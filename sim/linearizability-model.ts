// The sequential model of one key, compiled for the linearizability search. Values and states are
// interned to small integers so that a step is a handful of integer comparisons and a state fits
// one word of the visited-set entry.
import type { HistoryOp } from './history.js';

/** A step whose recorded output the state cannot produce: this order is impossible. */
export const STEP_INVALID = -1;
/**
 * An indeterminate op that would leave the state as it is. Linearizing it is then equivalent to
 * leaving it out, which the search may always do, so it is not tried.
 */
export const STEP_NO_EFFECT = -2;

/** State id of an absent key; every other state is interned from 1 up. */
export const STATE_ABSENT = 0;

// A state's lookup key is version * valueIdsMax + valueId: exact in a double while versions stay
// below 2^31, far beyond any history the checker can search.
const VALUE_IDS_MAX = 2 ** 21;
const VERSION_MAX = 2 ** 31;

const KIND_GET = 0;
const KIND_PUT = 1;
const KIND_DELETE = 2;

const NO_IF_VERSION = -1;
/** The value id of the absent state. */
const NO_VALUE = 0;
/**
 * One id for every value that no determinate get returned. States that differ only between such
 * values have the same future: no get can succeed in either, and puts and deletes look only at
 * the version. Merging them lets the visited set recognise them as one.
 */
const UNOBSERVED_VALUE = 1;

const REASON_NONE = 0;
const REASON_NOT_FOUND = 1;
const REASON_MISMATCH = 2;

/** One op, flattened: its request and, when determinate, the output it must reproduce. */
interface ModelOp {
  readonly kind: number;
  readonly ifVersion: number;
  /** The value a put writes. */
  readonly valueId: number;
  readonly determinate: boolean;
  /** put/delete ok; get found. */
  readonly outOk: boolean;
  /** get's version, put's new version, or the currentVersion of a failed compare. */
  readonly outVersion: number;
  readonly outValueId: number;
  readonly outReason: number;
}

/**
 * The model of one key over a fixed set of ops. Op indices are positions in the array given to
 * the constructor; the caller is expected to have dropped indeterminate gets, which can never
 * matter (they change nothing and constrain nothing).
 */
export class KeyModel {
  private readonly ops: readonly ModelOp[];
  private readonly valueIds = new Map<string, number>();
  private readonly stateIds = new Map<number, number>();
  private readonly stateVersions: number[] = [0];
  private readonly stateValueIds: number[] = [NO_VALUE];

  constructor(ops: readonly HistoryOp[]) {
    // Observed values first, so that compiling a put can tell whether its value was ever seen.
    for (const { output } of ops) {
      if (output !== null && output.kind === 'get' && output.found) this.observedValueId(output.value);
    }
    this.ops = ops.map((op) => this.compile(op));
  }

  /**
   * For an indeterminate op, a key shared exactly by the ops whose effects are indistinguishable
   * (same request, value unobserved or equal); null for a determinate op. Two such ops are
   * interchangeable once both are invoked, so the search need only apply each class in
   * invocation order.
   */
  symmetryClass(opIndex: number): string | null {
    const op = this.ops[opIndex];
    return op.determinate ? null : `${op.kind}/${op.ifVersion}/${op.valueId}`;
  }

  get stateCount(): number {
    return this.stateVersions.length;
  }

  /** The op applies whatever the state (no ifVersion): a get, or a plain put or delete. */
  isUnconditional(opIndex: number): boolean {
    return this.ops[opIndex].ifVersion === NO_IF_VERSION;
  }

  /** The state after op `opIndex` runs in `stateId`, or STEP_INVALID / STEP_NO_EFFECT. */
  step(stateId: number, opIndex: number): number {
    const op = this.ops[opIndex];
    const version = this.stateVersions[stateId];
    const valueId = this.stateValueIds[stateId];
    const present = version !== 0;
    if (op.kind === KIND_GET) {
      if (!op.determinate) return STEP_NO_EFFECT;
      if (op.outOk !== present) return STEP_INVALID;
      if (present && (op.outVersion !== version || op.outValueId !== valueId)) return STEP_INVALID;
      return stateId;
    }
    if (op.kind === KIND_PUT) {
      if (op.ifVersion !== NO_IF_VERSION && op.ifVersion !== version) {
        if (!op.determinate) return STEP_NO_EFFECT;
        return !op.outOk && op.outVersion === version ? stateId : STEP_INVALID;
      }
      if (op.determinate && !(op.outOk && op.outVersion === version + 1)) return STEP_INVALID;
      return this.intern(version + 1, op.valueId);
    }
    if (!present) {
      if (!op.determinate) return STEP_NO_EFFECT;
      // As the KV store does: the version condition is checked first, so ifVersion n > 0 on an
      // absent key is a mismatch against version 0; no condition (or ifVersion 0) is notFound.
      if (op.ifVersion !== NO_IF_VERSION && op.ifVersion !== 0) {
        return !op.outOk && op.outReason === REASON_MISMATCH && op.outVersion === 0 ? stateId : STEP_INVALID;
      }
      return !op.outOk && op.outReason === REASON_NOT_FOUND ? stateId : STEP_INVALID;
    }
    if (op.ifVersion !== NO_IF_VERSION && op.ifVersion !== version) {
      if (!op.determinate) return STEP_NO_EFFECT;
      return !op.outOk && op.outReason === REASON_MISMATCH && op.outVersion === version
        ? stateId
        : STEP_INVALID;
    }
    if (op.determinate && !op.outOk) return STEP_INVALID;
    return STATE_ABSENT;
  }

  private intern(version: number, valueId: number): number {
    if (version >= VERSION_MAX)
      throw new Error(`linearizability: version ${version} is beyond the model's range`);
    const lookup = version * VALUE_IDS_MAX + valueId;
    let id = this.stateIds.get(lookup);
    if (id === undefined) {
      id = this.stateVersions.length;
      this.stateIds.set(lookup, id);
      this.stateVersions.push(version);
      this.stateValueIds.push(valueId);
    }
    return id;
  }

  private observedValueId(value: string): number {
    let id = this.valueIds.get(value);
    if (id === undefined) {
      id = this.valueIds.size + UNOBSERVED_VALUE + 1;
      if (id >= VALUE_IDS_MAX) throw new Error('linearizability: too many distinct values on one key');
      this.valueIds.set(value, id);
    }
    return id;
  }

  private compile(historyOp: HistoryOp): ModelOp {
    const { op, output } = historyOp;
    const determinate = output !== null;
    const ifVersion = op.kind !== 'get' && op.ifVersion !== undefined ? op.ifVersion : NO_IF_VERSION;
    let outOk = false;
    let outVersion = 0;
    let outValueId = NO_VALUE;
    let outReason = REASON_NONE;
    if (output !== null) {
      if (output.kind === 'get') {
        outOk = output.found;
        if (output.found) {
          outVersion = output.version;
          outValueId = this.observedValueId(output.value);
        }
      } else if (output.kind === 'put') {
        outOk = output.ok;
        outVersion = output.ok ? output.version : output.currentVersion;
      } else {
        outOk = output.ok;
        if (!output.ok) {
          outReason = output.reason === 'notFound' ? REASON_NOT_FOUND : REASON_MISMATCH;
          if (output.reason === 'mismatch') outVersion = output.currentVersion;
        }
      }
    }
    return {
      kind: op.kind === 'get' ? KIND_GET : op.kind === 'put' ? KIND_PUT : KIND_DELETE,
      ifVersion,
      valueId: op.kind === 'put' ? (this.valueIds.get(op.value) ?? UNOBSERVED_VALUE) : NO_VALUE,
      determinate,
      outOk,
      outVersion,
      outValueId,
      outReason,
    };
  }
}
