/**
 * A hand-driven WebSocket peer for abuse tests: it can skip or fake the handshake and send
 * arbitrary frames, which a ClusterNode never does.
 */
import { WebSocket } from 'ws';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import {
  ACCEPT_FRAME, HEADER_INCARNATION, HEADER_MAX_PAYLOAD, HEADER_NODE, HEADER_NONCE, HEADER_PROOF, HEADER_TO, HEADER_VERSION,
  PROTOCOL_VERSION, clientProof, newNonce, proofMatches, serverProof,
} from '../../src/cluster/handshake.js';
import { channelBinding } from '../../src/cluster/tls.js';

export interface RawPeer {
  ws: WebSocket;
  closed: Promise<{ code: number; reason: string }>;
}

/** Opens a ws to `target` (`name@host:port`) claiming to be `as`, and proves `cookie` (right or wrong). */
export async function rawPeer(target: string, cookie: string | undefined, as = 'raw@127.0.0.9'): Promise<RawPeer> {
  const [, hostPort] = target.split('@') as [string, string];
  const nonce = newNonce();
  const ws = new WebSocket(`ws://${hostPort}/flame`, {
    headers: {
      [HEADER_VERSION]: PROTOCOL_VERSION,
      [HEADER_NODE]: as,
      [HEADER_TO]: target,
      [HEADER_NONCE]: nonce,
      [HEADER_INCARNATION]: 'raw',
      [HEADER_MAX_PAYLOAD]: String(1 << 30),
    },
    perMessageDeflate: false,
    maxPayload: 1 << 30,
  });
  ws.on('error', () => {});
  const closed = once(ws, 'close').then(([code, reason]) => ({ code: code as number, reason: String(reason) }));
  const upgraded = once(ws, 'upgrade') as Promise<[{ headers: Record<string, string> }]>;
  const opened = once(ws, 'open');
  const [res] = await upgraded;
  await opened;
  if (cookie !== undefined) {
    ws.send(clientProof(cookie, { clientNode: as, serverNode: target, clientNonce: nonce, serverNonce: res.headers[HEADER_NONCE]!, binding: Buffer.alloc(0) }));
    const first = await Promise.race([once(ws, 'message').then(([d]) => d as Buffer), closed.then(() => undefined)]);
    if (first && !first.equals(ACCEPT_FRAME)) throw new Error('unexpected handshake answer');
  }
  return { ws, closed };
}

export interface RawUpgrade {
  socket: Socket;
  /** Resolves when the server closes (or resets) the connection. */
  closed: Promise<void>;
}

/**
 * A WebSocket upgrade written by hand on a plain TCP socket from `localAddress`, with valid
 * handshake headers but no proof: for tests that must send frames ws itself would refuse to
 * build (a header announcing 16 MiB, then raw bytes). Resolves once the 101 arrived, or to
 * undefined when the server refused or dropped the connection first.
 */
export async function rawUpgrade(target: string, localAddress: string, as = 'raw@127.0.0.9'): Promise<RawUpgrade | undefined> {
  const [, hostPort] = target.split('@') as [string, string];
  const [host, port] = hostPort.split(':') as [string, string];
  const socket = connect({ host, port: Number(port), localAddress });
  socket.on('error', () => {});
  // Not events.once: it would reject on the 'error' (ECONNRESET) that precedes the close.
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const request = [
    'GET /flame HTTP/1.1', `Host: ${hostPort}`, 'Upgrade: websocket', 'Connection: Upgrade',
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`, 'Sec-WebSocket-Version: 13',
    `${HEADER_VERSION}: ${PROTOCOL_VERSION}`, `${HEADER_NODE}: ${as}`, `${HEADER_TO}: ${target}`,
    `${HEADER_NONCE}: ${newNonce()}`, `${HEADER_INCARNATION}: raw`, '', '',
  ].join('\r\n');
  socket.write(request);
  const answered = new Promise<boolean>((resolve) => {
    let head = '';
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      resolve(head.startsWith('HTTP/1.1 101'));
    };
    socket.on('data', onData);
    void closed.then(() => resolve(false));
  });
  if (!(await answered)) {
    socket.destroy();
    return undefined;
  }
  return { socket, closed };
}

/** The header of a masked binary frame announcing `length` payload bytes (a client frame). */
export function frameHeader(length: number): Buffer {
  const header = Buffer.alloc(14);
  header[0] = 0x82;
  header[1] = 0x80 | 127;
  header.writeBigUInt64BE(BigInt(length), 2);
  randomBytes(4).copy(header, 10);
  return header;
}

export interface TlsDialResult {
  /** The server's proof checked out against this connection's own TLS session. */
  serverProven: boolean;
  /** `accepted`, or the close code the server answered our proof with. */
  outcome: 'accepted' | number;
}

/**
 * A legitimate dialer (it knows the cookie) that connects over TLS to `connectTo` ("host:port")
 * while naming `target` as the node it means to reach, as a node whose traffic an attacker
 * redirects would. It binds its proof to its own TLS session, as a ClusterNode does.
 */
export async function rawTlsDial(connectTo: string, target: string, cookie: string, as = 'raw@127.0.0.9'): Promise<TlsDialResult> {
  const clientNonce = newNonce();
  const ws = new WebSocket(`wss://${connectTo}/flame`, {
    headers: {
      [HEADER_VERSION]: PROTOCOL_VERSION, [HEADER_NODE]: as, [HEADER_TO]: target, [HEADER_NONCE]: clientNonce,
      [HEADER_INCARNATION]: 'raw', [HEADER_MAX_PAYLOAD]: String(1 << 20),
    },
    perMessageDeflate: false,
    rejectUnauthorized: false,
    minVersion: 'TLSv1.3',
  });
  ws.on('error', () => {});
  const closed = once(ws, 'close').then(([code]) => code as number);
  const upgraded = once(ws, 'upgrade') as Promise<[{ headers: Record<string, string>; socket: Duplex }]>;
  const opened = once(ws, 'open');
  const [res] = await upgraded;
  const challenge = {
    clientNode: as, serverNode: target, clientNonce, serverNonce: res.headers[HEADER_NONCE]!, binding: channelBinding(res.socket),
  };
  const serverProven = proofMatches(serverProof(cookie, challenge), res.headers[HEADER_PROOF]);
  await opened;
  ws.send(clientProof(cookie, challenge));
  const first = await Promise.race([once(ws, 'message').then(([d]) => d as Buffer), closed]);
  ws.terminate();
  return { serverProven, outcome: Buffer.isBuffer(first) && first.equals(ACCEPT_FRAME) ? 'accepted' : typeof first === 'number' ? first : -1 };
}
