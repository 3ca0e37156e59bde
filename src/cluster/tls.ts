/**
 * Link encryption without a PKI. With `tls: 'auto'` a node presents an ephemeral self-signed
 * certificate, made once per process, and peers do not verify it against any CA. What makes a
 * man in the middle useless is the handshake: both cookie proofs cover keying material exported
 * from the TLS session itself (RFC 5705 / RFC 8446 section 7.5), which differs on each side of
 * an interceptor that terminates TLS, so a proof it relays never checks out, and the cookie it
 * would need to forge one never travels. TLS 1.3 only: its exporter is bound to the whole
 * handshake.
 */
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { dynamicImport } from '../dynamic-import.js';

/** Label of the exported keying material (RFC 5705 asks for an "EXPORTER-" prefix). */
const EXPORTER_LABEL = 'EXPORTER-flame-actors-link';
const EXPORTER_BYTES = 32;
const NO_BINDING = Buffer.alloc(0);

/** Your own certificates, verified against `ca` (a PKI); see `tls: 'auto'` for encryption without one. */
export interface TlsOptions {
  /** PEM private key of this node's certificate. */
  key: string | Buffer;
  /** PEM certificate; must carry the IP SAN of the host peers dial. */
  cert: string | Buffer;
  /** PEM CA that signed the peers' certificates (defaults to Node's trust store). */
  ca?: string | Buffer;
}

/** How links are secured, as the node resolved its `tls` option. */
export type LinkSecurity =
  | { readonly mode: 'plain' }
  | { readonly mode: 'auto' }
  | { readonly mode: 'pki'; readonly options: TlsOptions };

let ephemeral: Promise<{ key: string; cert: string }> | undefined;

/** This process's ephemeral certificate (EC P-256), made on first use. `selfsigned` loads only then. */
export function ephemeralCertificate(): Promise<{ key: string; cert: string }> {
  ephemeral ??= (dynamicImport('selfsigned') as Promise<typeof import('selfsigned')>).then(async ({ generate }) => {
    const pems = await generate([{ name: 'commonName', value: 'flame-actors ephemeral node' }], {
      keyType: 'ec',
      curve: 'P-256',
      algorithm: 'sha256',
      notAfterDate: new Date(Date.now() + 10 * 365 * 24 * 3600 * 1000),
    });
    return { key: pems.private, cert: pems.cert };
  });
  return ephemeral;
}

/** The server side's TLS context, or undefined for plaintext links. */
export async function serverContext(security: LinkSecurity): Promise<tls.SecureContext | undefined> {
  if (security.mode === 'plain') return undefined;
  const { key, cert } = security.mode === 'auto' ? await ephemeralCertificate() : security.options;
  return tls.createSecureContext({ key, cert, minVersion: 'TLSv1.3' });
}

/** What the dialing side passes to ws (and on to `tls.connect`). */
export function dialOptions(security: LinkSecurity): tls.ConnectionOptions {
  if (security.mode === 'plain') return {};
  if (security.mode === 'auto') return { minVersion: 'TLSv1.3', rejectUnauthorized: false };
  return { minVersion: 'TLSv1.3', ...(security.options.ca ? { ca: security.options.ca } : {}) };
}

/**
 * The channel binding of a connection: keying material exported from its TLS session (the
 * same on both ends of one session, different on each side of an interceptor), or nothing on a
 * plaintext connection.
 */
export function channelBinding(socket: Duplex | null | undefined): Buffer {
  if (socket instanceof tls.TLSSocket) return socket.exportKeyingMaterial(EXPORTER_BYTES, EXPORTER_LABEL, NO_BINDING);
  return NO_BINDING;
}
