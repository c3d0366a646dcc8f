import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** Files and PEM text made by {@link createTestCertificates}. */
export interface TestCertificates {
  /** The test CA's certificate, PEM: pass it as `tls: { ca }` to trust the broker. */
  readonly caPem: string;
  /** Path of the CA certificate file. */
  readonly caFile: string;
  /** Path of the server (leaf) certificate, signed by the CA. */
  readonly certFile: string;
  /** Path of the server's private key (unencrypted). */
  readonly keyFile: string;
}

/**
 * Makes a throwaway CA and a server certificate it signs (P-256 keys, valid 2 days) in
 * `dir`, with `openssl`. The server certificate's subjectAltName lists `hosts`: names
 * become `DNS:` entries, IP addresses `IP:` entries. For tests only: the keys are not
 * protected.
 * @default hosts ['localhost', '127.0.0.1']
 */
export async function createTestCertificates(
  dir: string,
  hosts: readonly string[] = ['localhost', '127.0.0.1'],
): Promise<TestCertificates> {
  await mkdir(dir, { recursive: true });
  const file = (name: string) => path.join(dir, name);
  const san = hosts
    .map((host) => (/^[\d.]+$|:/.test(host) ? `IP:${host}` : `DNS:${host}`))
    .join(',');
  await writeFile(
    file('server.ext'),
    [
      `subjectAltName = ${san}`,
      'basicConstraints = CA:FALSE',
      'keyUsage = digitalSignature, keyEncipherment',
      'extendedKeyUsage = serverAuth',
    ].join('\n') + '\n',
  );
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl(
    ['req', '-x509', ...key, '-keyout', file('ca.key'), '-out', file('ca.pem')],
    ['-days', '2', '-subj', '/CN=rabbit-rpc test CA'],
  );
  await openssl(
    ['req', ...key, '-keyout', file('server.key'), '-out', file('server.csr')],
    ['-subj', `/CN=${hosts[0] ?? 'localhost'}`],
  );
  await openssl(
    ['x509', '-req', '-in', file('server.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key')],
    ['-CAcreateserial', '-out', file('server.pem'), '-days', '2', '-extfile', file('server.ext')],
  );
  return {
    caPem: await readFile(file('ca.pem'), 'utf8'),
    caFile: file('ca.pem'),
    certFile: file('server.pem'),
    keyFile: file('server.key'),
  };
}

function openssl(...args: string[][]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('openssl', args.flat(), { timeout: 30_000 }, (error, _stdout, stderr) => {
      if (error) reject(new Error(`openssl ${args.flat()[0] ?? ''} failed: ${stderr.trim()}`));
      else resolve();
    });
  });
}
