// Who a peer is, from its certificate, and the TLS files a node loads at start. Uses only Node's
// built-in X.509 parser: the agent needs no certificate-authority code to run (that lives in
// certs.ts, loaded by `anya-ha cert` and `anya-ha up` only).
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { PeerCertificate } from 'node:tls';
import { HaError } from '../errors.js';

/** Node certificates name their node in a URI subject alternative name with this prefix. */
export const nodeUriPrefix = 'anya-ha://node/';

export interface TlsFilePaths {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

export interface TlsMaterial {
  readonly ca: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
}

/**
 * The node id a certificate speaks for: its `anya-ha://node/<id>` URI name, else its common
 * name; null when it names neither or cannot be parsed.
 */
export function nodeIdFromCertificate(peerCert: Pick<PeerCertificate, 'raw'> | Uint8Array): string | null {
  const der = peerCert instanceof Uint8Array ? peerCert : peerCert.raw;
  if (!(der instanceof Uint8Array) || der.length === 0) return null;
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(der);
  } catch {
    return null;
  }
  // "URI:anya-ha://node/node-1, DNS:localhost, IP Address:127.0.0.1"
  for (const name of (cert.subjectAltName ?? '').split(', ')) {
    const uri = name.startsWith('URI:') ? name.slice(4) : '';
    if (uri.startsWith(nodeUriPrefix)) {
      const id = uri.slice(nodeUriPrefix.length);
      return id.length > 0 ? id : null;
    }
  }
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)?.[1];
  return cn !== undefined && cn.length > 0 ? cn : null;
}

/** Reads one PEM file; the error says which file and why. */
export async function loadTlsFile(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : (err as Error).message;
    throw new HaError('HA_ERR_BAD_REQUEST', `${what} ${path}: ${why}`, { path });
  }
}

/** Reads the PEM files a TlsTransport needs; the error names the file that is missing or unreadable. */
export async function loadTlsFiles(paths: TlsFilePaths): Promise<TlsMaterial> {
  const [ca, cert, key] = await Promise.all([
    loadTlsFile(paths.ca, 'tls.ca (CA certificate)'),
    loadTlsFile(paths.cert, 'tls.cert (node certificate)'),
    loadTlsFile(paths.key, 'tls.key (node key)'),
  ]);
  return { ca, cert, key };
}
