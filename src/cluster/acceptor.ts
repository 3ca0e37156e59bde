/**
 * The accepting side of the handshake (see handshake.ts): checks the upgrade request, proves the
 * cookie in the 101 response, and waits for the dialer's proof, decoding nothing else before it
 * checks out. Every refusal is logged with the peer's address.
 */
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from '../log.js';
import { parseNodeName } from './address.js';
import {
  HEADER_INCARNATION, HEADER_MAX_PAYLOAD, HEADER_NODE, HEADER_NONCE, HEADER_PROOF, HEADER_TO, HEADER_VERSION,
  PROOF_BYTES, PROTOCOL_VERSION, clientProof, isNonce, newNonce, proofMatches, serverProof,
} from './handshake.js';
import type { ResolvedNodeOptions } from './options.js';
import type { Connection } from './peer.js';

/** What the acceptor needs from its node. */
export interface AcceptorHost {
  readonly name: string;
  readonly incarnation: string;
  readonly options: ResolvedNodeOptions;
  readonly logger: Logger;
  readonly stopped: boolean;
  refused(info: { address: string; node: string | undefined; reason: string }): void;
  /** A dialer proved the cookie: the node decides whether to keep the link. */
  authenticated(conn: Connection): void;
}

export class Acceptor {
  readonly #host: AcceptorHost;
  readonly #wss: WebSocketServer;
  readonly #pendingUpgrades = new WeakMap<http.IncomingMessage, string[]>();

  constructor(host: AcceptorHost) {
    this.#host = host;
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: host.options.maxPayload, perMessageDeflate: false });
    this.#wss.on('headers', (headers, req) => {
      const extra = this.#pendingUpgrades.get(req);
      if (extra) headers.push(...extra);
    });
  }

  /** Drops every connection, authenticated or not. */
  close(): void {
    for (const client of this.#wss.clients) client.terminate();
    this.#wss.close();
  }

  #refuse(socket: Duplex, req: http.IncomingMessage, status: number, text: string, reason: string): void {
    const node = req.headers[HEADER_NODE];
    const address = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
    this.#host.logger.warn(`refused connection from ${address}${typeof node === 'string' ? ` (claims ${node})` : ''}: ${reason}`);
    this.#host.refused({ address, node: typeof node === 'string' ? node : undefined, reason });
    socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    socket.destroy();
  }

  /** Handles an HTTP upgrade request of the node's server. */
  handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => {});
    if (this.#host.stopped) return void socket.destroy();
    const h = req.headers;
    const clientNode = h[HEADER_NODE];
    const clientNonce = h[HEADER_NONCE];
    if (new URL(req.url ?? '/', 'http://x').pathname !== '/flame') {
      return this.#refuse(socket, req, 404, 'Not Found', `unknown path ${req.url}`);
    }
    if (h[HEADER_VERSION] !== PROTOCOL_VERSION) {
      return this.#refuse(socket, req, 401, 'Unauthorized', `missing or unsupported protocol version ${JSON.stringify(h[HEADER_VERSION] ?? null)}`);
    }
    let peerName: string;
    try {
      peerName = parseNodeName(String(clientNode)).node;
    } catch {
      return this.#refuse(socket, req, 401, 'Unauthorized', 'missing or invalid node name');
    }
    if (!isNonce(clientNonce) || typeof h[HEADER_INCARNATION] !== 'string') {
      return this.#refuse(socket, req, 401, 'Unauthorized', 'missing or invalid challenge');
    }
    if (h[HEADER_TO] !== this.#host.name) {
      return this.#refuse(socket, req, 421, 'Misdirected Request', `dialed ${JSON.stringify(h[HEADER_TO])}, but this is ${this.#host.name}`);
    }
    const serverNonce = newNonce();
    this.#pendingUpgrades.set(req, [
      `${HEADER_NODE}: ${this.#host.name}`,
      `${HEADER_NONCE}: ${serverNonce}`,
      `${HEADER_INCARNATION}: ${this.#host.incarnation}`,
      `${HEADER_MAX_PAYLOAD}: ${this.#host.options.maxPayload}`,
      `${HEADER_PROOF}: ${serverProof(this.#host.options.cookie, peerName, this.#host.name, clientNonce, serverNonce).toString('base64url')}`,
    ]);
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      const address = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
      const expected = clientProof(this.#host.options.cookie, peerName, this.#host.name, clientNonce, serverNonce);
      const timer = setTimeout(() => {
        ws.off('message', onMessage);
        ws.off('close', onClose);
        this.#refuseSocket(ws, address, peerName, 'handshake timed out');
      }, this.#host.options.handshakeTimeout);
      // Kept for the socket's life: an 'error' without a listener would be thrown.
      const onError = () => {};
      const onClose = () => {
        clearTimeout(timer);
        this.#refuseSocket(ws, address, peerName, 'closed by the peer before it proved the cookie');
      };
      const onMessage = (data: Buffer, isBinary: boolean) => {
        clearTimeout(timer);
        // Remove only our own listeners: ws's server keeps its own on the socket (its client set).
        ws.off('close', onClose);
        // Only the proof is looked at: nothing a peer sends is decoded before it checks out.
        if (!isBinary || data.length !== PROOF_BYTES || !proofMatches(expected, data)) {
          this.#refuseSocket(ws, address, peerName, 'wrong cookie');
          return;
        }
        const maxPayload = Number(h[HEADER_MAX_PAYLOAD]);
        this.#host.authenticated({
          ws,
          peerNode: peerName,
          incarnation: String(h[HEADER_INCARNATION]),
          maxPayload: Number.isInteger(maxPayload) && maxPayload > 0 ? maxPayload : this.#host.options.maxPayload,
          dialer: peerName,
        });
      };
      ws.on('error', onError);
      ws.once('message', onMessage);
      ws.on('close', onClose);
    });
  }

  #refuseSocket(ws: WebSocket, address: string, node: string, reason: string): void {
    this.#host.logger.warn(`refused connection from ${address} (claims ${node}): ${reason}`);
    this.#host.refused({ address, node, reason });
    ws.close(4001, 'authentication failed');
    setTimeout(() => ws.terminate(), 1000).unref();
  }
}
