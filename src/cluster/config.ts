// The agent configuration: node.yaml for the agent, the same fields as a JS object for the library
// (ClusterManager). Both go through one validator, so that the two can never accept different
// things. Validation is two-step: a JSON Schema for shape and types (unknown fields are refused,
// since a misspelt optional field would otherwise silently fall back to its default), then semantic
// checks across fields. All problems are reported together, each naming its field and what was
// expected, and nothing is built from a config that has any.
import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { HaError } from '../errors.js';
import { nodeId, type NodeId } from '../raft/types.js';
import { kvHistoryBytesMaxDefault } from '../state/kv-types.js';
import { durationExpected, durationMsOrNull } from './duration.js';
import {
  isAddressProblem,
  nodeEntryExpected,
  parseHostPort,
  parseNodeEntry,
  type NodeAddress,
} from './node-list.js';
import {
  defaulted,
  nodeListSchema,
  Problems,
  reportSchemaError,
  show,
  validateShape,
  type ConfigFieldError,
  type LogLevel,
} from './config-schema.js';

export { parseDurationMs } from './duration.js';
export { agentConfigSchema, logLevels, nodesMax, snapshotEntriesMax } from './config-schema.js';
export type { ConfigFieldError, LogLevel } from './config-schema.js';

/** A node.yaml larger than this is not a configuration file. */
export const configBytesMax = 1024 * 1024;

// Defaults for fast failover on a LAN. A follower waits an election timeout drawn from
// [electionTimeout, 2 × electionTimeout) without hearing from the leader before it starts a
// pre-vote, so the timeout must span several heartbeats (a lost or late heartbeat is not a failure)
// plus scheduling jitter. The leader lease is shorter than the minimum election timeout by the
// clock-drift margin, so a deposed leader stops serving lease reads before anyone else can win.
export const defaultClusterId = 'anya-ha';
export const defaultApiPort = 8080;
export const defaultHeartbeatIntervalMs = 50;
export const defaultElectionTimeoutMs = 150;
export const defaultTickIntervalMs = 10;
export const defaultRequestTimeoutMs = 5000;
export const defaultSnapshotEntries = 10_000;
export const defaultLogLevel: LogLevel = 'info';

/** Per-field bounds in milliseconds, [min, max]. */
export const durationBoundsMs = {
  heartbeatInterval: [5, 10_000],
  electionTimeout: [20, 60_000],
  tickInterval: [1, 1000],
  requestTimeout: [1, 600_000],
} as const;
/** Election timeout in heartbeats: fewer and one delayed heartbeat starts an election. */
export const electionHeartbeatsMin = 3;

export interface AgentConfig {
  readonly nodeId: NodeId;
  readonly clusterId: string;
  readonly bindHost: string;
  readonly bindPort: number;
  readonly apiHost: string;
  readonly apiPort: number;
  readonly nodes: readonly NodeAddress[];
  readonly learners: readonly NodeId[];
  readonly heartbeatIntervalMs: number;
  readonly electionTimeoutMs: number;
  readonly tickIntervalMs: number;
  /** The effective intervals are these tick counts × tickIntervalMs. */
  readonly heartbeatTicks: number;
  readonly electionTicks: number;
  /** Absolute. */
  readonly dataDir: string;
  /** Absolute paths of PEM files. */
  readonly tls: { readonly ca: string; readonly cert: string; readonly key: string };
  readonly logLevel: LogLevel;
  readonly requestTimeoutMs: number;
  /** Compact the log every this many applied entries. */
  readonly snapshotEntries: number;
  /** Bytes of past KV versions retained (oldest superseded go first). */
  readonly historyBytesMax: number;
}

/** The same fields as node.yaml, as the library accepts them. */
export interface AgentConfigInput {
  readonly nodeId: string;
  readonly clusterId?: string;
  readonly bindAddress: string;
  readonly apiAddress?: string;
  readonly nodes?: readonly string[];
  readonly discovery?: { readonly static: { readonly nodes: readonly string[] } };
  readonly learners?: readonly string[];
  readonly heartbeatInterval?: string | number;
  readonly electionTimeout?: string | number;
  readonly tickInterval?: string | number;
  readonly requestTimeout?: string | number;
  readonly dataDir: string;
  readonly tls: { readonly ca: string; readonly cert: string; readonly key: string };
  readonly logLevel?: LogLevel;
  readonly snapshotEntries?: number;
  readonly historyBytesMax?: number;
}

/** Parses node.yaml text. Relative paths resolve against `baseDir` (default: the source's folder). */
export function parseAgentConfig(text: string, source: string, baseDir?: string): AgentConfig {
  const base = baseDir ?? dirname(resolve(source));
  if (Buffer.byteLength(text) > configBytesMax) {
    throw badConfig(source, [{ field: '', message: `${source}: larger than ${configBytesMax} bytes` }]);
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter });
  if (doc.errors.length > 0) {
    const errors = doc.errors.map((e) => {
      const at = lineCounter.linePos(e.pos[0]);
      const message = `${source}: line ${at.line}, column ${at.col}: malformed YAML: ${e.message.split('\n')[0]}`;
      return { field: '', message };
    });
    throw badConfig(source, errors);
  }
  // The yaml package bounds alias expansion (maxAliasCount), so a small file cannot expand to a
  // huge value.
  return validateConfig(doc.toJS(), source, base);
}

/** Reads and parses node.yaml. */
export function loadAgentConfig(path: string): AgentConfig {
  let text: string;
  try {
    const size = statSync(path).size;
    if (size > configBytesMax) {
      throw new Error(`larger than ${configBytesMax} bytes (${size})`);
    }
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new HaError('HA_ERR_BAD_REQUEST', `cannot read config file "${path}": ${reason}`, { path });
  }
  return parseAgentConfig(text, path);
}

/** The library's options object, validated exactly like node.yaml. */
export function configFromOptions(
  input: AgentConfigInput,
  options: { source?: string; baseDir?: string } = {},
): AgentConfig {
  return validateConfig(
    withoutUndefined(input),
    options.source ?? 'options',
    options.baseDir ?? process.cwd(),
  );
}

// JS callers spread optional fields as `undefined`; treat those as absent, like an omitted key.
function withoutUndefined(value: unknown, depth = 0): unknown {
  if (depth > 8 || value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (v !== undefined) out[k] = withoutUndefined(v, depth + 1);
  }
  return out;
}

function validateConfig(raw: unknown, source: string, baseDir: string): AgentConfig {
  const problems = new Problems(source);
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    const message = `${source}: expected a mapping of configuration fields, got ${show(raw)}`;
    throw badConfig(source, [{ field: '', message }]);
  }
  if (!validateShape(raw)) {
    for (const e of validateShape.errors ?? []) reportSchemaError(problems, e);
  }
  const r = raw as Record<string, unknown>;
  const str = (field: string): string | undefined =>
    !problems.has(field) && typeof r[field] === 'string' ? (r[field] as string) : undefined;

  const self = str('nodeId');
  const nodes = checkNodes(problems, r, self);
  const learners = checkLearners(problems, r, nodes);

  const bindText = str('bindAddress');
  const bind = bindText === undefined ? undefined : parseHostPort(bindText);
  if (bind !== undefined && isAddressProblem(bind)) problems.add('bindAddress', bind.expected, bindText);
  const apiText = str('apiAddress');
  let api = apiText === undefined ? undefined : parseHostPort(apiText);
  if (api !== undefined && isAddressProblem(api)) problems.add('apiAddress', api.expected, apiText);
  if (apiText === undefined && !problems.has('apiAddress') && bind !== undefined && !isAddressProblem(bind)) {
    api = parseHostPort(`${bind.address.slice(0, bind.address.lastIndexOf(':'))}:${defaultApiPort}`);
  }
  if (bind !== undefined && api !== undefined && !isAddressProblem(bind) && !isAddressProblem(api)) {
    if (bind.host === api.host && bind.port === api.port) {
      problems.add('apiAddress', 'a port different from the peer listener "bindAddress"', api.address);
    }
  }

  const times = checkDurations(problems, r);

  const dataDir = str('dataDir');
  const tlsRaw = (problems.has('tls') ? {} : (r.tls ?? {})) as Record<string, unknown>;
  const tlsPath = (k: string) =>
    !problems.has(`tls.${k}`) && typeof tlsRaw[k] === 'string' ? resolve(baseDir, tlsRaw[k] as string) : '';

  if (problems.list.length > 0) throw badConfig(source, problems.list);
  // Every field was checked above; reaching here with a missing value is a bug in this file.
  if (self === undefined || bind === undefined || isAddressProblem(bind) || api === undefined) {
    throw new Error('config validation passed without nodeId or bindAddress');
  }
  if (isAddressProblem(api) || nodes === undefined || times === undefined || dataDir === undefined) {
    throw new Error('config validation passed without addresses, nodes, durations or dataDir');
  }
  return {
    nodeId: nodeId(self),
    clusterId: str('clusterId') ?? defaultClusterId,
    bindHost: bind.host,
    bindPort: bind.port,
    apiHost: api.host,
    apiPort: api.port,
    nodes,
    learners,
    ...times,
    dataDir: resolve(baseDir, dataDir),
    tls: { ca: tlsPath('ca'), cert: tlsPath('cert'), key: tlsPath('key') },
    logLevel: (str('logLevel') as LogLevel | undefined) ?? defaultLogLevel,
    snapshotEntries: typeof r.snapshotEntries === 'number' ? r.snapshotEntries : defaultSnapshotEntries,
    historyBytesMax: typeof r.historyBytesMax === 'number' ? r.historyBytesMax : kvHistoryBytesMaxDefault,
  };
}

function checkNodes(
  problems: Problems,
  r: Record<string, unknown>,
  self: string | undefined,
): NodeAddress[] | undefined {
  let field = 'nodes';
  if (r.nodes !== undefined && r.discovery !== undefined) {
    problems.note(
      'discovery',
      'give the node list either as "nodes" or as "discovery.static.nodes", not both',
    );
    return undefined;
  }
  let list: unknown = r.nodes;
  if (r.discovery !== undefined) {
    field = 'discovery.static.nodes';
    list = (r.discovery as { static?: { nodes?: unknown } } | null)?.static?.nodes;
  } else if (r.nodes === undefined) {
    problems.note('nodes', `missing; expected ${nodeListSchema.description}, each ${nodeEntryExpected}`);
    return undefined;
  }
  if (!Array.isArray(list) || [...problems.fields].some((f) => f.startsWith(field) || f === 'discovery')) {
    return undefined;
  }
  const nodes: NodeAddress[] = [];
  const seenIds = new Map<string, number>();
  const seenAddresses = new Map<string, number>();
  list.forEach((text: string, i) => {
    const entry = parseNodeEntry(text);
    const at = `${field}[${i}]`;
    if (isAddressProblem(entry)) return problems.add(at, entry.expected, text);
    const prevId = seenIds.get(entry.id);
    const prevAddress = seenAddresses.get(entry.address);
    if (prevId !== undefined)
      return problems.add(at, `a unique node id, but "${entry.id}" is also at [${prevId}]`, text);
    if (prevAddress !== undefined) {
      return problems.add(at, `a unique address, but ${entry.address} is also at [${prevAddress}]`, text);
    }
    seenIds.set(entry.id, i);
    seenAddresses.set(entry.address, i);
    nodes.push(entry);
  });
  if (nodes.length !== list.length) return undefined;
  if (self !== undefined && !seenIds.has(self)) {
    problems.add(
      field,
      `a list that includes this node "${self}"`,
      nodes.map((n) => n.id),
    );
    return undefined;
  }
  return nodes;
}

function checkLearners(
  problems: Problems,
  r: Record<string, unknown>,
  nodes: NodeAddress[] | undefined,
): NodeId[] {
  if (!Array.isArray(r.learners) || problems.has('learners') || nodes === undefined) return [];
  const ids = new Set<string>(nodes.map((n) => n.id));
  r.learners.forEach((id: string, i) => {
    if (!ids.has(id)) problems.add(`learners[${i}]`, 'a node id listed in "nodes"', id);
  });
  if (r.learners.length >= nodes.length) {
    problems.add('learners', 'at least one node to remain a voter', r.learners);
  }
  return r.learners.map((id: string) => nodeId(id));
}

function checkDurations(problems: Problems, r: Record<string, unknown>) {
  const ms = (field: keyof typeof durationBoundsMs, fallback: number): number | undefined => {
    if (problems.has(field)) return undefined;
    const value = r[field];
    if (value === undefined) return fallback;
    const parsed = durationMsOrNull(value);
    const [min, max] = durationBoundsMs[field];
    if (parsed === null) {
      problems.add(field, durationExpected, value);
    } else if (parsed < min || parsed > max) {
      problems.add(field, `a duration from ${min}ms to ${max}ms`, value);
    } else {
      return parsed;
    }
    return undefined;
  };
  const heartbeatIntervalMs = ms('heartbeatInterval', defaultHeartbeatIntervalMs);
  const electionTimeoutMs = ms('electionTimeout', defaultElectionTimeoutMs);
  const tickIntervalMs = ms('tickInterval', defaultTickIntervalMs);
  const requestTimeoutMs = ms('requestTimeout', defaultRequestTimeoutMs);
  if (heartbeatIntervalMs === undefined || electionTimeoutMs === undefined) return undefined;
  if (electionTimeoutMs < electionHeartbeatsMin * heartbeatIntervalMs) {
    problems.add(
      'electionTimeout',
      `at least ${electionHeartbeatsMin} × heartbeatInterval (${electionHeartbeatsMin * heartbeatIntervalMs}ms)`,
      r.electionTimeout ?? defaulted(electionTimeoutMs),
    );
    return undefined;
  }
  if (tickIntervalMs === undefined || requestTimeoutMs === undefined) return undefined;
  if (tickIntervalMs > heartbeatIntervalMs) {
    problems.add('tickInterval', `at most heartbeatInterval (${heartbeatIntervalMs}ms)`, r.tickInterval);
    return undefined;
  }
  // The core counts time in ticks, so both intervals are rounded to whole ticks; the rounded
  // values must still keep the election timeout several heartbeats long.
  const heartbeatTicks = Math.max(1, Math.round(heartbeatIntervalMs / tickIntervalMs));
  const electionTicks = Math.round(electionTimeoutMs / tickIntervalMs);
  if (electionTicks < electionHeartbeatsMin * heartbeatTicks) {
    problems.add(
      'tickInterval',
      `a tick that keeps electionTimeout at least ${electionHeartbeatsMin} heartbeats long after rounding ` +
        `to ticks (${electionTicks} election ticks, ${heartbeatTicks} heartbeat ticks)`,
      r.tickInterval ?? defaulted(tickIntervalMs),
    );
    return undefined;
  }
  return {
    heartbeatIntervalMs,
    electionTimeoutMs,
    tickIntervalMs,
    heartbeatTicks,
    electionTicks,
    requestTimeoutMs,
  };
}

function badConfig(source: string, errors: readonly ConfigFieldError[]): HaError {
  const head = errors.length === 1 ? '' : `${source}: ${errors.length} problems in the configuration\n`;
  return new HaError('HA_ERR_BAD_REQUEST', head + errors.map((e) => e.message).join('\n'), { errors });
}
