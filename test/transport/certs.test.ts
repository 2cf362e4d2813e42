import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import assert from 'node:assert/strict';
import { webcrypto } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { HaError } from '../../src/errors.js';
import { initCa, issueNodeCert, loadTlsFiles, nodeIdFromCertificate } from '../../src/transport/certs.js';

let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'anya-ha-certs-test-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const der = (pem: Buffer): Uint8Array => new Uint8Array(x509.PemConverter.decodeFirst(pem.toString('utf8')));

describe('certificates', () => {
  test('initCa writes a CA with an owner-only key and never overwrites it', async () => {
    const caDir = join(dir, 'ca-once');
    const first = await initCa(caDir);
    const certBefore = await readFile(first.caCertPath);
    const keyBefore = await readFile(first.caKeyPath);
    assert.equal((await stat(first.caKeyPath)).mode & 0o777, 0o600);
    const second = await initCa(caDir);
    assert.deepEqual(second, first);
    assert.deepEqual(await readFile(first.caCertPath), certBefore);
    assert.deepEqual(await readFile(first.caKeyPath), keyBefore);
    const ca = new x509.X509Certificate(certBefore.toString('utf8'));
    assert.equal(ca.getExtension(x509.BasicConstraintsExtension)?.ca, true);
  });

  test('initCa refuses to complete a CA whose key or certificate is missing', async () => {
    const caDir = join(dir, 'ca-half');
    const { caKeyPath } = await initCa(caDir);
    await unlink(caKeyPath);
    await assert.rejects(
      initCa(caDir),
      (err: unknown) => err instanceof HaError && err.message.includes(caKeyPath),
    );
  });

  test('a node certificate names the node in a URI SAN and CN, for server and client use, signed by the CA', async () => {
    const caDir = join(dir, 'ca-node');
    const { caCertPath } = await initCa(caDir);
    const { certPath, keyPath } = await issueNodeCert(caDir, 'node-7', {
      hosts: ['10.0.0.7', 'node7.internal'],
    });
    assert.equal((await stat(keyPath)).mode & 0o777, 0o600);
    const cert = new x509.X509Certificate((await readFile(certPath)).toString('utf8'));
    const ca = new x509.X509Certificate((await readFile(caCertPath)).toString('utf8'));
    assert.equal(cert.subject, 'CN=node-7');
    assert.deepEqual(cert.getExtension(x509.SubjectAlternativeNameExtension)?.names.toJSON(), [
      { type: 'url', value: 'anya-ha://node/node-7' },
      { type: 'ip', value: '10.0.0.7' },
      { type: 'dns', value: 'node7.internal' },
    ]);
    assert.deepEqual(
      [...(cert.getExtension(x509.ExtendedKeyUsageExtension)?.usages ?? [])],
      [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
    );
    assert.equal(cert.getExtension(x509.KeyUsagesExtension)?.usages, x509.KeyUsageFlags.digitalSignature);
    assert.equal(await cert.verify({ publicKey: ca.publicKey, signatureOnly: true }), true);
    const validityDays = (cert.notAfter.getTime() - cert.notBefore.getTime()) / 86_400_000;
    assert.ok(validityDays > 364 && validityDays < 367, `validity ${validityDays} days`);
    assert.equal(nodeIdFromCertificate(der(await readFile(certPath))), 'node-7');
  });

  test('two certificates for the same node get different serial numbers', async () => {
    const caDir = join(dir, 'ca-serial');
    await initCa(caDir);
    const serial = async (): Promise<string> => {
      const { certPath } = await issueNodeCert(caDir, 'n1');
      return new x509.X509Certificate((await readFile(certPath)).toString('utf8')).serialNumber;
    };
    assert.notEqual(await serial(), await serial());
  });

  test('nodeIdFromCertificate falls back to the CN, and returns null for no certificate or junk', async () => {
    const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
      'sign',
      'verify',
    ])) as webcrypto.CryptoKeyPair;
    const cnOnly = await x509.X509CertificateGenerator.createSelfSigned({
      name: 'CN=legacy-node',
      keys,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    });
    assert.equal(nodeIdFromCertificate(new Uint8Array(cnOnly.rawData)), 'legacy-node');
    assert.equal(nodeIdFromCertificate({ raw: Buffer.alloc(0) }), null);
    assert.equal(nodeIdFromCertificate(new Uint8Array([1, 2, 3])), null);
  });

  test('issueNodeCert refuses node ids that are unsafe as file names', async () => {
    const caDir = join(dir, 'ca-ids');
    await initCa(caDir);
    for (const bad of ['', '../ca', 'a/b', 'n 1']) {
      await assert.rejects(
        issueNodeCert(caDir, bad),
        (err: unknown) => err instanceof HaError && err.code === 'HA_ERR_BAD_REQUEST',
      );
    }
  });

  test('loadTlsFiles names the file that is missing', async () => {
    const caDir = join(dir, 'ca-load');
    const { caCertPath } = await initCa(caDir);
    const { certPath } = await issueNodeCert(caDir, 'n1');
    const missingKey = join(caDir, 'nope.key');
    await assert.rejects(
      loadTlsFiles({ ca: caCertPath, cert: certPath, key: missingKey }),
      (err: unknown) =>
        err instanceof HaError &&
        err.code === 'HA_ERR_BAD_REQUEST' &&
        err.message === `tls.key (node key) ${missingKey}: does not exist`,
    );
    const loaded = await loadTlsFiles({ ca: caCertPath, cert: certPath, key: join(caDir, 'n1.key') });
    assert.match(loaded.key.toString('utf8'), /^-----BEGIN PRIVATE KEY-----/);
  });
});
