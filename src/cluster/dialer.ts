/**
 * The dialing side of the handshake (see handshake.ts): opens a WebSocket to a node, checks
 * that it proves the cookie, proves it in turn, and hands over the connection once accepted.
 */
import { isIP } from 'node:net';
import { WebSocket } from 'ws';
import { AuthenticationError, ConnectError, ProtocolError } from '../errors.js';
import { nodeUrl, parseNodeName } from './address.js';
import {
  ACCEPT_FRAME, HEADER_INCARNATION, HEADER_MAX_PAYLOAD, HEADER_NODE, HEADER_NONCE, HEADER_PROOF, HEADER_TO,
  HEADER_VERSION, PROTOCOL_VERSION, clientProof, isNonce, newNonce, proofMatches, serverProof, type Challenge,
} from './handshake.js';
import { channelBinding, dialOptions } from './tls.js';
import { describe } from './wire.js';
import type { ResolvedNodeOptions } from './options.js';
import type { Connection } from './peer.js';

export interface DialParams {
  /** This node's name. */
  self: string;
  incarnation: string;
  /** The node to reach. */
  target: string;
  options: ResolvedNodeOptions;
}

/** The upgrade request is out. */
const UPGRADING = 0;
/** The 101 came with a proof that checks out... */
const SERVER_PROVEN = 1;
/** ...or without one (we still send ours, so the server logs the mismatch too, then give up). */
const SERVER_UNPROVEN = 2;
/** Our proof is out; the server's ACCEPT frame makes the link. */
const AWAITING_ACCEPT = 3;
/** Resolved or rejected: later events are ignored. */
const DONE = 4;
type DialState = typeof UPGRADING | typeof SERVER_PROVEN | typeof SERVER_UNPROVEN | typeof AWAITING_ACCEPT | typeof DONE;

/** A zero mask: masking protects browsers' intermediaries, not node-to-node links, and costs a copy. */
function zeroMask(mask: Buffer): void {
  mask.fill(0);
}

/**
 * Resolves to the authenticated connection, or to `'duplicate'` when the target refused it
 * because its own dial to us wins the tie-break (both dialed at once).
 */
export function dialNode({ self, incarnation, target, options }: DialParams): Promise<Connection | 'duplicate'> {
  const url = nodeUrl(parseNodeName(target), options.security.mode !== 'plain');
  const clientNonce = newNonce();
  const { cookie } = options;
  return new Promise((resolve, reject) => {
    // One state, moved forward only (ws's own style: explicit state constants, not boolean pairs).
    let state: DialState = UPGRADING;
    let peerIncarnation = '';
    let peerMaxPayload = 0;
    let challenge: Challenge | undefined;
    const ws = new WebSocket(url, {
      headers: {
        [HEADER_VERSION]: PROTOCOL_VERSION,
        [HEADER_NODE]: self,
        [HEADER_TO]: target,
        [HEADER_NONCE]: clientNonce,
        [HEADER_INCARNATION]: incarnation,
        [HEADER_MAX_PAYLOAD]: String(options.maxPayload),
      },
      maxPayload: options.maxPayload,
      perMessageDeflate: false,
      handshakeTimeout: options.handshakeTimeout,
      generateMask: zeroMask,
      // Dial from our own address, so peers (and their logs) see the node's IP, as in a pod.
      ...(isIP(options.host) && !['0.0.0.0', '::'].includes(options.host) ? { localAddress: options.host } : {}),
      ...dialOptions(options.security),
    });
    const timer = setTimeout(() => fail(new ConnectError(`handshake with ${target} timed out after ${options.handshakeTimeout} ms`)), options.handshakeTimeout);
    /** Leaves the dial for good: the socket is ours no more (handed over) or closed. */
    const finish = (): boolean => {
      if (state === DONE) return false;
      state = DONE;
      clearTimeout(timer);
      ws.removeAllListeners();
      ws.on('error', () => {});
      return true;
    };
    const fail = (error: Error) => {
      if (!finish()) return;
      ws.terminate();
      reject(error);
    };
    ws.on('unexpected-response', (_req, res) => {
      const status = res.statusCode ?? 0;
      res.resume();
      fail(status === 401 || status === 403
        ? new AuthenticationError(`${target} refused the connection (HTTP ${status}): check that both nodes share the cookie`)
        : new ConnectError(`${target} refused the connection (HTTP ${status} ${res.statusMessage ?? ''})`.trim()));
    });
    ws.on('upgrade', (res) => {
      if (state !== UPGRADING) return;
      const serverNonce = String(res.headers[HEADER_NONCE] ?? '');
      peerIncarnation = String(res.headers[HEADER_INCARNATION] ?? '');
      peerMaxPayload = Number(res.headers[HEADER_MAX_PAYLOAD]);
      challenge = { clientNode: self, serverNode: target, clientNonce, serverNonce, binding: channelBinding(res.socket) };
      const expected = isNonce(serverNonce) ? serverProof(cookie, challenge) : undefined;
      const proven = res.headers[HEADER_NODE] === target && expected !== undefined && proofMatches(expected, res.headers[HEADER_PROOF] as string | undefined);
      state = proven ? SERVER_PROVEN : SERVER_UNPROVEN;
    });
    ws.on('open', () => {
      if (state === DONE) return;
      if (state === UPGRADING || challenge === undefined) return fail(new ProtocolError(`${target} opened the link without an upgrade response`));
      ws.send(clientProof(cookie, challenge));
      if (state === SERVER_UNPROVEN) {
        // Our proof went out first so that the server, too, sees the mismatch and logs it.
        finish();
        ws.close(4001, 'authentication failed');
        reject(new AuthenticationError(`${target} did not prove it knows our cookie: check that both nodes share the cookie`));
        return;
      }
      state = AWAITING_ACCEPT;
    });
    ws.once('message', (data: Buffer) => {
      if (state !== AWAITING_ACCEPT) return;
      if (!Buffer.isBuffer(data) || !data.equals(ACCEPT_FRAME)) {
        fail(new ProtocolError(`${target} sent an invalid handshake answer`));
        return;
      }
      finish();
      resolve({
        ws,
        peerNode: target,
        incarnation: peerIncarnation,
        maxPayload: Number.isInteger(peerMaxPayload) && peerMaxPayload > 0 ? peerMaxPayload : options.maxPayload,
        dialer: self,
      });
    });
    ws.on('close', (code, reason) => {
      if (code === 4002) {
        if (finish()) resolve('duplicate');
        return;
      }
      fail(code === 4001
        ? new AuthenticationError(`${target} refused our cookie: check that both nodes share the cookie`)
        : new ConnectError(`connection to ${target} closed during the handshake (${code} ${describe(reason.toString(), 123)})`.trim()));
    });
    ws.on('error', (error) => {
      fail(new ConnectError(`cannot connect to ${target} at ${url}: ${error.message}`, { cause: error, details: { node: target } }));
    });
  });
}
