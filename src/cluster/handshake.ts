/**
 * Mutual cookie challenge-response. The cookie itself never travels: each side proves it knows
 * it with an HMAC over both nonces and both node names.
 *
 *   client -> server  HTTP upgrade with headers: node, expected server node, client nonce
 *   server -> client  101 response headers: server node, server nonce, server proof
 *   client -> server  first frame: client proof (32 bytes), before anything is decoded
 *   server -> client  first frame: ACCEPT (the link is up)
 *
 * A fresh nonce per connection on each side makes a recorded proof useless for a replay. Over
 * TLS, both proofs also cover the session's exported keying material (the channel binding, see
 * tls.ts), so a proof is only good inside the TLS session it was made for.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const PROTOCOL_VERSION = '2';
export const HEADER_NODE = 'x-flame-node';
export const HEADER_TO = 'x-flame-to';
export const HEADER_NONCE = 'x-flame-nonce';
export const HEADER_PROOF = 'x-flame-proof';
export const HEADER_VERSION = 'x-flame-version';
export const HEADER_MAX_PAYLOAD = 'x-flame-max-payload';
export const HEADER_INCARNATION = 'x-flame-incarnation';

/** The one-byte frame a server sends once the client's proof checks out. */
export const ACCEPT_FRAME = Buffer.from([0x01]);
export const PROOF_BYTES = 32;

export function newNonce(): string {
  return randomBytes(24).toString('base64url');
}

const NONCE_RE = /^[A-Za-z0-9_-]{32}$/;
export function isNonce(value: unknown): value is string {
  return typeof value === 'string' && NONCE_RE.test(value);
}

/** Everything a proof covers besides the cookie. `binding` is empty on a plaintext link. */
export interface Challenge {
  clientNode: string;
  serverNode: string;
  clientNonce: string;
  serverNonce: string;
  binding: Buffer;
}

function proof(cookie: string, role: 'client' | 'server', c: Challenge): Buffer {
  return createHmac('sha256', cookie)
    .update(`flame/${PROTOCOL_VERSION}\0${role}\0${c.clientNode}\0${c.serverNode}\0${c.clientNonce}\0${c.serverNonce}\0`)
    .update(c.binding)
    .digest();
}

export function serverProof(cookie: string, challenge: Challenge): Buffer {
  return proof(cookie, 'server', challenge);
}

export function clientProof(cookie: string, challenge: Challenge): Buffer {
  return proof(cookie, 'client', challenge);
}

/** Constant-time comparison of a received proof with the expected one. */
export function proofMatches(expected: Buffer, received: Uint8Array | string | undefined): boolean {
  if (received === undefined) return false;
  const got = typeof received === 'string' ? Buffer.from(received, 'base64url') : Buffer.from(received);
  return got.length === expected.length && timingSafeEqual(got, expected);
}
