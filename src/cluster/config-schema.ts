// The shape of the agent configuration as a JSON Schema, and the problem list that turns schema
// and semantic failures into messages naming the field and what was expected. Kept apart from
// config.ts so that the checks there read as a list of rules.
import { Ajv, type ErrorObject } from 'ajv';
import { durationExpected } from './duration.js';
import { hostPortExpected, nodeEntryExpected, nodeIdExpected, nodeIdPattern } from './node-list.js';

export const logLevels = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
export type LogLevel = (typeof logLevels)[number];

/** Static node list length: voters (3, 5 or 7) plus learners; members join by gossip instead. */
export const nodesMax = 64;
export const snapshotEntriesMax = 10_000_000;
/** Largest accepted historyBytesMax: 64 GiB. */
export const historyBytesMaxMax = 64 * 1024 ** 3;

/** One problem, in `HaError.details.errors`. `message` is complete and names the source. */
export interface ConfigFieldError {
  readonly field: string;
  readonly message: string;
}

const pathLengthMax = 4096;
const addressLengthMax = 300;
const durationSchema = { type: ['string', 'integer'], description: durationExpected };
const pathSchema = (what: string) => ({
  type: 'string',
  minLength: 1,
  maxLength: pathLengthMax,
  description: `a path to ${what}`,
});
export const nodeListSchema = {
  type: 'array',
  minItems: 1,
  maxItems: nodesMax,
  description: `a list of 1 to ${nodesMax} nodes`,
  items: { type: 'string', maxLength: addressLengthMax, description: nodeEntryExpected },
};
const nodeIdSchema = { type: 'string', pattern: nodeIdPattern.source, description: nodeIdExpected };

export const agentConfigSchema = {
  type: 'object',
  description: 'a mapping of configuration fields',
  additionalProperties: false,
  required: ['nodeId', 'bindAddress', 'dataDir', 'tls'],
  properties: {
    nodeId: nodeIdSchema,
    clusterId: { ...nodeIdSchema, description: nodeIdExpected.replace('node id', 'cluster id') },
    bindAddress: { type: 'string', maxLength: addressLengthMax, description: hostPortExpected },
    apiAddress: { type: 'string', maxLength: addressLengthMax, description: hostPortExpected },
    nodes: nodeListSchema,
    discovery: {
      type: 'object',
      description: 'a mapping with "static: { nodes: [...] }"',
      additionalProperties: false,
      required: ['static'],
      properties: {
        static: {
          type: 'object',
          description: 'a mapping with "nodes: [...]"',
          additionalProperties: false,
          required: ['nodes'],
          properties: { nodes: nodeListSchema },
        },
      },
    },
    learners: {
      type: 'array',
      maxItems: nodesMax,
      uniqueItems: true,
      description: 'a list of node ids from "nodes"',
      items: nodeIdSchema,
    },
    heartbeatInterval: durationSchema,
    electionTimeout: durationSchema,
    tickInterval: durationSchema,
    requestTimeout: durationSchema,
    dataDir: pathSchema('the data directory'),
    tls: {
      type: 'object',
      description: 'a mapping with "ca", "cert" and "key" file paths',
      additionalProperties: false,
      required: ['ca', 'cert', 'key'],
      properties: {
        ca: pathSchema('the cluster CA certificate (PEM)'),
        cert: pathSchema("this node's certificate (PEM)"),
        key: pathSchema("this node's private key (PEM)"),
      },
    },
    logLevel: { enum: logLevels, description: `one of ${logLevels.join(', ')}` },
    snapshotEntries: {
      type: 'integer',
      minimum: 1,
      maximum: snapshotEntriesMax,
      description: `an integer number of log entries in 1..${snapshotEntriesMax}`,
    },
    historyBytesMax: {
      type: 'integer',
      minimum: 0,
      maximum: historyBytesMaxMax,
      description: `an integer number of bytes in 0..${historyBytesMaxMax}`,
    },
  },
} as const;

export const validateShape = new Ajv({ allErrors: true, verbose: true, allowUnionTypes: true }).compile(
  agentConfigSchema,
);

export class Problems {
  readonly list: ConfigFieldError[] = [];
  readonly fields = new Set<string>();
  constructor(private readonly source: string) {}

  add(field: string, expected: string, got: unknown): void {
    this.note(field, `expected ${expected}, got ${show(got)}`);
  }

  note(field: string, text: string): void {
    if (this.fields.has(field)) return; // one message per field: the first is the useful one
    this.fields.add(field);
    this.list.push({ field, message: `${this.source}: field "${field}": ${text}` });
  }

  has(field: string): boolean {
    return this.fields.has(field);
  }
}

export function reportSchemaError(problems: Problems, e: ErrorObject): void {
  const base = e.instancePath
    .split('/')
    .slice(1)
    .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, t) => (/^\d+$/.test(t) ? `${acc}[${t}]` : acc === '' ? t : `${acc}.${t}`), '');
  const join = (name: string) => (base === '' ? name : `${base}.${name}`);
  const parent = (e.parentSchema ?? {}) as {
    description?: string;
    properties?: Record<string, { description?: string }>;
  };
  switch (e.keyword) {
    case 'required': {
      const name = String(e.params.missingProperty);
      const expected = parent.properties?.[name]?.description ?? 'a value';
      return problems.note(join(name), `missing; expected ${expected}`);
    }
    case 'additionalProperties': {
      const name = String(e.params.additionalProperty);
      const known = Object.keys(parent.properties ?? {});
      const guess = known.find((k) => editDistance(k.toLowerCase(), name.toLowerCase()) <= 2);
      const hint = guess === undefined ? `known fields: ${known.join(', ')}` : `did you mean "${guess}"?`;
      return problems.note(join(name), `unknown field; ${hint}`);
    }
    case 'minItems':
      return problems.add(base, `${parent.description ?? 'a list'} (at least ${e.params.limit})`, e.data);
    case 'maxItems':
      return problems.add(base, `${parent.description ?? 'a list'} (at most ${e.params.limit})`, e.data);
    case 'uniqueItems':
      return problems.add(base, `no duplicates, but [${e.params.j}] and [${e.params.i}] are equal`, e.data);
    default:
      return problems.add(base, parent.description ?? String(e.message), e.data);
  }
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2 || a.length > 64 || b.length > 64) return 3;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length];
}

/** A got-value that says it came from a default rather than from the config. */
class Defaulted {
  constructor(readonly ms: number) {}
}
export const defaulted = (ms: number) => new Defaulted(ms);

export function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value instanceof Defaulted) return `the default ${value.ms}ms`;
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
