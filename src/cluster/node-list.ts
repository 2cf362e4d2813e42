// Addresses in configuration: "host:port" listeners and the static node list, whose entries are
// either "host:port" (the host is the node id, as with DNS names inside a cluster network) or
// "id@host:port" (an explicit id, for nodes addressed by IP).
import { nodeId, type NodeId } from '../raft/types.js';

/** Node ids appear in certificates, file names and log lines; keep them short and plain. */
export const nodeIdPattern = /^[a-z0-9][a-z0-9._-]{0,62}$/;
export const nodeIdExpected = 'a node id of lowercase letters, digits, ".", "_" or "-" (at most 63)';
export const hostPortExpected = 'an address "host:port" with a port in 1..65535';
export const nodeEntryExpected = 'a node "host:port" (the host is the node id) or "id@host:port"';

const hostLengthMax = 253;

export interface HostPort {
  /** Without brackets, also for IPv6. */
  readonly host: string;
  readonly port: number;
  /** Dialable form: "host:port", or "[v6]:port". */
  readonly address: string;
}

export interface NodeAddress extends HostPort {
  readonly id: NodeId;
}

/** What was expected, when an address does not parse. */
export interface AddressProblem {
  readonly expected: string;
}

const malformed: AddressProblem = { expected: hostPortExpected };
const badPort: AddressProblem = { expected: 'a port in 1..65535' };

export const isAddressProblem = (v: HostPort | NodeAddress | AddressProblem): v is AddressProblem =>
  'expected' in v;

/** Parses "host:port" or "[ipv6]:port". */
export function parseHostPort(text: string): HostPort | AddressProblem {
  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0 || text[close + 1] !== ':') return malformed;
    host = text.slice(1, close);
    portText = text.slice(close + 2);
    if (!/^[0-9a-fA-F:.]+$/.test(host) || !host.includes(':')) return malformed;
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) return malformed;
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    // A bare IPv6 address is ambiguous about where the port starts: require brackets.
    if (!/^[A-Za-z0-9._-]+$/.test(host)) return malformed;
  }
  if (host.length === 0 || host.length > hostLengthMax) return malformed;
  if (!/^\d+$/.test(portText)) return malformed;
  const port = Number(portText);
  if (port < 1 || port > 65535) return badPort;
  return { host, port, address: host.includes(':') ? `[${host}]:${port}` : `${host}:${port}` };
}

/** Parses one static node list entry. */
export function parseNodeEntry(text: string): NodeAddress | AddressProblem {
  const at = text.indexOf('@');
  const idText = at < 0 ? null : text.slice(0, at);
  const hostPort = parseHostPort(at < 0 ? text : text.slice(at + 1));
  if (isAddressProblem(hostPort)) return hostPort === badPort ? badPort : { expected: nodeEntryExpected };
  const id = idText ?? hostPort.host;
  if (!nodeIdPattern.test(id)) {
    return {
      expected:
        idText === null ? `${nodeEntryExpected}, where the host is ${nodeIdExpected}` : nodeIdExpected,
    };
  }
  return { id: nodeId(id), ...hostPort };
}
