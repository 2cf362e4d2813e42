// Certificates for node-to-node mutual TLS (DESIGN.md §5): a cluster CA and one certificate per
// node, ECDSA P-256. A node certificate names its node id in a URI SAN
// (anya-ha://node/<nodeId>) and in the subject CN; the transport reads that name to decide which
// node is on the other end of a connection, so a node id is only as trustworthy as the CA key.
import 'reflect-metadata'; // must precede @peculiar/x509, whose dependency injection needs it
import * as x509 from '@peculiar/x509';
import { randomBytes, webcrypto } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { HaError } from '../errors.js';
import { loadTlsFile, nodeUriPrefix } from './peer-identity.js';

export { loadTlsFiles, nodeIdFromCertificate, nodeUriPrefix } from './peer-identity.js';
export type { TlsFilePaths, TlsMaterial } from './peer-identity.js';

x509.cryptoProvider.set(webcrypto);

export const caValidityDays = 3650;
export const nodeCertValidityDays = 365;
/** Certificates start slightly in the past so that a peer whose clock lags still accepts them. */
const notBeforeSkewMs = 5 * 60_000;
const dayMs = 24 * 60 * 60_000;
const defaultHosts: readonly string[] = ['127.0.0.1', 'localhost'];
// Node ids become file names and URI paths: keep them to characters that are safe in both.
const nodeIdPattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/;

const keyAlgorithm: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const signingAlgorithm: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };

export interface CaFiles {
  readonly caCertPath: string;
  readonly caKeyPath: string;
}

export interface NodeCertFiles {
  readonly certPath: string;
  readonly keyPath: string;
}

const exists = async (path: string): Promise<boolean> =>
  readFile(path).then(
    () => true,
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return false;
      throw new HaError('HA_ERR_BAD_REQUEST', `cannot read ${path}: ${err.message}`, { path });
    },
  );

/** A positive 128-bit serial number, random so that reissued certificates never collide. */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x40;
  return bytes.toString('hex');
}

async function privateKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

/** Writes a file whole or not at all: a crash never leaves half a key where a key is expected. */
async function writeFileAtomic(path: string, data: string, mode: number): Promise<void> {
  const tmp = `${path}.tmp-${randomBytes(6).toString('hex')}`;
  try {
    await writeFile(tmp, data, { mode, flag: 'wx' });
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Creates the cluster CA in `dir` (ca.crt, and ca.key readable by the owner only) unless it exists;
 * an existing CA is never overwritten and is returned as is.
 */
export async function initCa(dir: string): Promise<CaFiles> {
  const caCertPath = join(dir, 'ca.crt');
  const caKeyPath = join(dir, 'ca.key');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const [certExists, keyExists] = await Promise.all([exists(caCertPath), exists(caKeyPath)]);
  if (certExists && keyExists) return { caCertPath, caKeyPath };
  if (certExists !== keyExists) {
    const [present, missing] = certExists ? [caCertPath, caKeyPath] : [caKeyPath, caCertPath];
    throw new HaError(
      'HA_ERR_BAD_REQUEST',
      `CA in ${dir} is incomplete: ${present} exists but ${missing} does not; refusing to overwrite it`,
      { path: missing },
    );
  }
  const keys = (await webcrypto.subtle.generateKey(keyAlgorithm, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=anya-ha cluster CA ${randomBytes(4).toString('hex')}`,
    notBefore: new Date(now - notBeforeSkewMs),
    notAfter: new Date(now + caValidityDays * dayMs),
    keys,
    signingAlgorithm,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  // 'wx' on both: if another process created the CA meanwhile, fail rather than replace it.
  await writeFile(caKeyPath, await privateKeyPem(keys.privateKey), { mode: 0o600, flag: 'wx' });
  await writeFile(caCertPath, cert.toString('pem'), { mode: 0o644, flag: 'wx' });
  return { caCertPath, caKeyPath };
}

function checkNodeId(nodeId: string): void {
  if (!nodeIdPattern.test(nodeId)) {
    throw new HaError(
      'HA_ERR_BAD_REQUEST',
      `node id "${nodeId}": expected 1 to 255 characters of A-Z a-z 0-9 . _ - starting with a letter or digit`,
      { field: 'nodeId' },
    );
  }
}

/**
 * Issues a certificate for `nodeId`, signed by the CA in `dir`, valid for one year for both TLS
 * server and client use. Writes <nodeId>.crt and <nodeId>.key (owner-only), replacing an earlier
 * certificate for the same node (renewal).
 */
export async function issueNodeCert(
  dir: string,
  nodeId: string,
  options: { hosts?: readonly string[] } = {},
): Promise<NodeCertFiles> {
  checkNodeId(nodeId);
  const caCertPath = join(dir, 'ca.crt');
  const caKeyPath = join(dir, 'ca.key');
  const ca = await loadTlsFile(caCertPath, 'CA certificate');
  const caKeyPem = await loadTlsFile(caKeyPath, 'CA key');
  const caCert = new x509.X509Certificate(ca.toString('utf8'));
  const caKey = await webcrypto.subtle.importKey(
    'pkcs8',
    x509.PemConverter.decodeFirst(caKeyPem.toString('utf8')),
    keyAlgorithm,
    false,
    ['sign'],
  );
  const hosts = options.hosts ?? defaultHosts;
  const altNames: x509.JsonGeneralNames = [
    { type: 'url', value: `${nodeUriPrefix}${nodeId}` },
    ...hosts.map((h): x509.JsonGeneralName => ({ type: isIP(h) !== 0 ? 'ip' : 'dns', value: h })),
  ];
  const keys = (await webcrypto.subtle.generateKey(keyAlgorithm, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${nodeId}`,
    issuer: caCert.subject,
    notBefore: new Date(now - notBeforeSkewMs),
    notAfter: new Date(now + nodeCertValidityDays * dayMs),
    publicKey: keys.publicKey,
    signingKey: caKey,
    signingAlgorithm,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([
        x509.ExtendedKeyUsage.serverAuth,
        x509.ExtendedKeyUsage.clientAuth,
      ]),
      new x509.SubjectAlternativeNameExtension(altNames),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey),
    ],
  });
  const certPath = join(dir, `${nodeId}.crt`);
  const keyPath = join(dir, `${nodeId}.key`);
  await writeFileAtomic(keyPath, await privateKeyPem(keys.privateKey), 0o600);
  await writeFileAtomic(certPath, cert.toString('pem'), 0o644);
  return { certPath, keyPath };
}
