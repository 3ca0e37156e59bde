/**
 * The cluster's TLS material: a self-signed CA (what `ca.crt` and the kubeconfig carry) and a
 * serving certificate it signs for the addresses clients connect to. Clients verify the server
 * against the CA exactly as with a real cluster; nobody needs `insecure-skip-tls-verify`.
 */
import { isIP } from 'node:net';
import { generate } from 'selfsigned';

export interface ClusterCertificates {
  caPem: string;
  caKeyPem: string;
  serverCertPem: string;
  serverKeyPem: string;
}

/** Generates a CA and a serving certificate for `hosts` (IPs or DNS names). */
export async function generateClusterCertificates(hosts: string[]): Promise<ClusterCertificates> {
  // A little back-dating absorbs clock differences between the processes that check the certificate.
  const notBeforeDate = new Date(Date.now() - 60 * 60 * 1000);
  const notAfterDate = new Date(Date.now() + 365 * 24 * 60 * 60 * 1000);
  const ca = await generate([{ name: 'commonName', value: 'flame-emulator-ca' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate,
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  const altNames = [...new Set(hosts)].map((host) => (isIP(host) ? { type: 7 as const, ip: host } : { type: 2 as const, value: host }));
  const server = await generate([{ name: 'commonName', value: 'kube-apiserver' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate,
    ca: { key: ca.private, cert: ca.cert },
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames },
    ],
  });
  return { caPem: ca.cert, caKeyPem: ca.private, serverCertPem: server.cert, serverKeyPem: server.private };
}
