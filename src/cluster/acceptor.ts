/**
 * The accepting side of the handshake (see handshake.ts): checks the upgrade request, proves the
 * cookie in the 101 response, and waits for the dialer's proof, decoding nothing else before it
 * checks out (until then, frames larger than the proof close the connection). Every refusal is
 * logged once with the peer's address, by the listener.
 */
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { parseNodeName } from './address.js';
import {
  HEADER_INCARNATION, HEADER_MAX_PAYLOAD, HEADER_NODE, HEADER_NONCE, HEADER_PROOF, HEADER_TO, HEADER_VERSION,
  PROOF_BYTES, PROTOCOL_VERSION, clientProof, isNonce, newNonce, proofMatches, serverProof, type Challenge,
} from './handshake.js';
import { channelBinding } from './tls.js';
import type { ResolvedNodeOptions } from './options.js';
import type { Connection } from './peer.js';
import type { Listener } from './listener.js';
import { describe } from './wire.js';

/** What the acceptor needs from its node. */
export interface AcceptorHost {
  readonly name: string;
  readonly incarnation: string;
  readonly options: ResolvedNodeOptions;
  readonly stopped: boolean;
  /** The node's endpoint: peer addresses, refusals (logged once), the pre-proof caps. */
  readonly listener: Listener;
  /** A dialer proved the cookie: the node decides whether to keep the link. */
  authenticated(conn: Connection): void;
}

type ReceiverInternals = { _receiver?: { _maxPayload?: unknown } };

/**
 * Raises a socket's frame limit once its peer is authenticated. ws sets the limit per server;
 * ours is the size of the proof until then, so an unauthenticated peer cannot make the node
 * buffer a large frame. ws 8 keeps the limit on its receiver; if that ever moves, say so loudly.
 */
function raiseMaxPayload(ws: WebSocket, maxPayload: number): boolean {
  const receiver = (ws as unknown as ReceiverInternals)._receiver;
  if (receiver === undefined || typeof receiver._maxPayload !== 'number') return false;
  receiver._maxPayload = maxPayload;
  return true;
}

export class Acceptor {
  readonly #host: AcceptorHost;
  readonly #wss: WebSocketServer;
  readonly #pendingUpgrades = new WeakMap<http.IncomingMessage, string[]>();

  constructor(host: AcceptorHost) {
    this.#host = host;
    // Before the proof, a frame larger than the proof closes the connection (1009).
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: PROOF_BYTES, perMessageDeflate: false });
    this.#wss.on('headers', (headers, req) => {
      const extra = this.#pendingUpgrades.get(req);
      if (extra) headers.push(...extra);
    });
  }

  /** Open WebSockets, authenticated or not (ws's own set: it must shrink as links close). */
  get connections(): number {
    return this.#wss.clients.size;
  }

  /** Drops every connection, authenticated or not. */
  close(): void {
    for (const client of this.#wss.clients) client.terminate();
    this.#wss.close();
  }

  #refuse(socket: Duplex, req: http.IncomingMessage, status: number, text: string, reason: string): void {
    const node = req.headers[HEADER_NODE];
    this.#host.listener.refuse(socket, typeof node === 'string' ? node : undefined, reason);
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
      return this.#refuse(socket, req, 404, 'Not Found', `unknown path ${describe(req.url, 100)}`);
    }
    if (h[HEADER_VERSION] !== PROTOCOL_VERSION) {
      return this.#refuse(socket, req, 401, 'Unauthorized', `missing or unsupported protocol version ${describe(h[HEADER_VERSION] ?? null, 40)}`);
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
      return this.#refuse(socket, req, 421, 'Misdirected Request', `dialed ${describe(h[HEADER_TO], 100)}, but this is ${this.#host.name}`);
    }
    this.#host.listener.claim(socket, peerName);
    const { cookie } = this.#host.options;
    const challenge: Challenge = {
      clientNode: peerName, serverNode: this.#host.name, clientNonce, serverNonce: newNonce(), binding: channelBinding(socket),
    };
    this.#pendingUpgrades.set(req, [
      `${HEADER_NODE}: ${this.#host.name}`,
      `${HEADER_NONCE}: ${challenge.serverNonce}`,
      `${HEADER_INCARNATION}: ${this.#host.incarnation}`,
      `${HEADER_MAX_PAYLOAD}: ${this.#host.options.maxPayload}`,
      `${HEADER_PROOF}: ${serverProof(cookie, challenge).toString('base64url')}`,
    ]);
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      const listener = this.#host.listener;
      const expected = clientProof(cookie, challenge);
      // Kept for the socket's life: an 'error' without a listener would be thrown. Before the
      // proof, an error (a frame over the proof's size, a protocol violation) ends the connection.
      ws.on('error', (error: Error) => {
        listener.refuse(socket, peerName, `${error.message} before proving the cookie`);
      });
      const onMessage = (data: Buffer, isBinary: boolean) => {
        // Only the proof is looked at: nothing a peer sends is decoded before it checks out.
        if (!isBinary || data.length !== PROOF_BYTES || !proofMatches(expected, data)) {
          this.#refuseSocket(ws, socket, peerName, 'wrong cookie');
          return;
        }
        if (!raiseMaxPayload(ws, this.#host.options.maxPayload)) {
          this.#refuseSocket(ws, socket, peerName, 'this version of ws keeps its frame limit elsewhere: cannot raise it after authentication');
          return;
        }
        listener.proven(socket);
        const maxPayload = Number(h[HEADER_MAX_PAYLOAD]);
        this.#host.authenticated({
          ws,
          peerNode: peerName,
          incarnation: String(h[HEADER_INCARNATION]),
          maxPayload: Number.isInteger(maxPayload) && maxPayload > 0 ? maxPayload : this.#host.options.maxPayload,
          dialer: peerName,
        });
      };
      ws.once('message', onMessage);
    });
  }

  #refuseSocket(ws: WebSocket, socket: Duplex, node: string, reason: string): void {
    this.#host.listener.refuse(socket, node, reason);
    ws.close(4001, 'authentication failed');
    // The close frame gets a moment to leave; the socket goes either way.
    setTimeout(() => ws.terminate(), 250).unref();
  }
}
