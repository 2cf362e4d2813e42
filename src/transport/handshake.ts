// The first frame each way on a node-to-node connection (DESIGN.md §5):
//
//   client -> server  { v, clusterId, nodeId, capabilities }
//   server -> client  { v, clusterId, nodeId, capabilities }   accepted
//                     { refused: reason, detail }              refused; the server then closes
//
// TLS has already proved that the peer holds a certificate from the cluster CA; the handshake adds
// what TLS cannot know: that both ends belong to the same cluster and speak a common protocol
// version, and that the node id a peer claims is the one its certificate names (otherwise any
// node could speak for any other).
import { HaError } from '../errors.js';
import type { NodeId } from '../raft/types.js';
import { isPlainObject, nodeIdLengthMax } from './parse-message.js';

export const protocolVersion = 1;
export const protocolVersionsSupported: readonly number[] = [protocolVersion];
/** Bounds on what a peer may announce, so that a hello stays a few hundred bytes. */
export const capabilitiesMax = 64;
/**
 * Message types added after protocol version 1 shipped, announced as capabilities: a node sends
 * one to a peer only if the peer's hello named it, so that a cluster upgraded one node at a time
 * never hands an older node a frame it would refuse (which closes the connection).
 */
export const messageCapabilities = ['msg:proposeResp', 'msg:snapshotChunk'] as const;
export const capabilityLengthMax = 64;
export const clusterIdLengthMax = 255;

export interface Hello {
  readonly v: number;
  readonly clusterId: string;
  readonly nodeId: NodeId;
  readonly capabilities: readonly string[];
}

/**
 * Why a connection was refused or closed. Stable strings: they appear in logs, in refusal frames
 * and as keys of TlsTransport.stats().refused.
 */
export type RefusalReason =
  | 'tls-handshake-failed' // certificate from another CA, no certificate, TLS below 1.3
  | 'handshake-timeout' // no hello within handshakeTimeoutMs
  | 'bad-handshake' // the first frame is not a well-formed hello
  | 'unsupported-version'
  | 'cluster-mismatch'
  | 'node-id-mismatch' // the claimed node id is not the one the certificate names
  | 'unknown-peer' // the node id is not a member of this node's peer set
  | 'frame-too-large'
  | 'bad-frame' // undecodable MessagePack
  | 'bad-message' // decodes, but is not a well-formed Raft message
  | 'sender-mismatch' // a message whose `from`/`to` is not this connection's peer/this node
  | 'truncated-frame' // the stream ended in the middle of a frame
  | 'unexpected-frame'; // a frame where none belongs (after the server's hello)

export const refusalReasons: readonly RefusalReason[] = [
  'tls-handshake-failed',
  'handshake-timeout',
  'bad-handshake',
  'unsupported-version',
  'cluster-mismatch',
  'node-id-mismatch',
  'unknown-peer',
  'frame-too-large',
  'bad-frame',
  'bad-message',
  'sender-mismatch',
  'truncated-frame',
  'unexpected-frame',
];

export const isRefusalReason = (s: unknown): s is RefusalReason =>
  typeof s === 'string' && (refusalReasons as readonly string[]).includes(s);

export interface Refusal {
  readonly refused: RefusalReason;
  readonly detail: string;
}

export function makeHello(clusterId: string, nodeId: NodeId, capabilities: readonly string[] = []): Hello {
  if (typeof clusterId !== 'string' || clusterId.length === 0 || clusterId.length > clusterIdLengthMax) {
    throw new HaError('HA_ERR_BAD_REQUEST', `clusterId: expected 1 to ${clusterIdLengthMax} characters`, {
      field: 'clusterId',
    });
  }
  if (capabilities.length > capabilitiesMax || capabilities.some((c) => c.length > capabilityLengthMax)) {
    throw new HaError(
      'HA_ERR_BAD_REQUEST',
      `capabilities: expected at most ${capabilitiesMax} names of at most ${capabilityLengthMax} characters`,
      { field: 'capabilities' },
    );
  }
  return { v: protocolVersion, clusterId, nodeId, capabilities: [...capabilities] };
}

export interface HelloExpectation {
  readonly clusterId: string;
  /** The node id the peer's certificate names (nodeIdFromCertificate), null if it names none. */
  readonly certNodeId: string | null;
  /** Server side: the node ids allowed to connect. Omitted: any node the CA vouches for. */
  readonly knownPeers?: { has(id: NodeId): boolean };
  /** Client side: the node we dialled. */
  readonly dialledNodeId?: NodeId;
}

export type HelloCheck =
  | { readonly ok: true; readonly hello: Hello }
  | { readonly ok: false; readonly reason: RefusalReason; readonly detail: string };

const refuse = (reason: RefusalReason, detail: string): HelloCheck => ({ ok: false, reason, detail });

/**
 * Checks a peer's hello frame. The version is checked first and on its own, so that a future
 * version may change every other field and still get a clear "unsupported-version".
 */
export function checkHello(frame: unknown, expect: HelloExpectation): HelloCheck {
  if (!isPlainObject(frame)) return refuse('bad-handshake', 'first frame is not a map');
  const v = frame['v'];
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) {
    return refuse('bad-handshake', 'field v: expected protocol version (integer)');
  }
  if (!protocolVersionsSupported.includes(v)) {
    return refuse(
      'unsupported-version',
      `protocol version ${v} is not supported (supported: ${protocolVersionsSupported.join(', ')})`,
    );
  }
  const { clusterId, nodeId, capabilities } = frame;
  if (typeof clusterId !== 'string' || clusterId.length === 0 || clusterId.length > clusterIdLengthMax) {
    return refuse(
      'bad-handshake',
      `field clusterId: expected string of 1 to ${clusterIdLengthMax} characters`,
    );
  }
  if (typeof nodeId !== 'string' || nodeId.length === 0 || nodeId.length > nodeIdLengthMax) {
    return refuse('bad-handshake', `field nodeId: expected string of 1 to ${nodeIdLengthMax} characters`);
  }
  if (
    !Array.isArray(capabilities) ||
    capabilities.length > capabilitiesMax ||
    !capabilities.every((c) => typeof c === 'string' && c.length <= capabilityLengthMax)
  ) {
    return refuse(
      'bad-handshake',
      `field capabilities: expected at most ${capabilitiesMax} strings of at most ${capabilityLengthMax} characters`,
    );
  }
  if (clusterId !== expect.clusterId) {
    return refuse('cluster-mismatch', `cluster id "${clusterId}" differs from ours "${expect.clusterId}"`);
  }
  if (expect.certNodeId === null) {
    return refuse('node-id-mismatch', `hello claims node "${nodeId}" but the certificate names no node id`);
  }
  if (nodeId !== expect.certNodeId) {
    return refuse(
      'node-id-mismatch',
      `hello claims node "${nodeId}" but the certificate names node "${expect.certNodeId}"`,
    );
  }
  const id = nodeId as NodeId;
  if (expect.dialledNodeId !== undefined && id !== expect.dialledNodeId) {
    return refuse('node-id-mismatch', `dialled node "${expect.dialledNodeId}" but node "${id}" answered`);
  }
  if (expect.knownPeers !== undefined && !expect.knownPeers.has(id)) {
    return refuse('unknown-peer', `node "${id}" is not a peer of this node`);
  }
  return { ok: true, hello: { v, clusterId, nodeId: id, capabilities: capabilities as string[] } };
}

/** Bound on how much of a peer's refusal text this node logs. */
export const refusalDetailLengthMax = 1024;

/**
 * The server's answer to a hello, as the client sees it: a refusal, or null when the frame is
 * something else (the server's hello). A reason from a newer peer is kept as text, not trusted.
 */
export function parseRefusal(frame: unknown): { reason: string; detail: string } | null {
  if (!isPlainObject(frame) || !('refused' in frame)) return null;
  const reason = frame['refused'];
  const detail = frame['detail'];
  return {
    reason: typeof reason === 'string' ? reason.slice(0, 64) : 'unknown',
    detail: typeof detail === 'string' ? detail.slice(0, refusalDetailLengthMax) : '',
  };
}
