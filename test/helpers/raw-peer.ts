/**
 * A hand-driven WebSocket peer for abuse tests: it can skip or fake the handshake and send
 * arbitrary frames, which a ClusterNode never does.
 */
import { WebSocket } from 'ws';
import { once } from 'node:events';
import {
  ACCEPT_FRAME, HEADER_INCARNATION, HEADER_MAX_PAYLOAD, HEADER_NODE, HEADER_NONCE, HEADER_TO, HEADER_VERSION,
  PROTOCOL_VERSION, clientProof, newNonce,
} from '../../src/cluster/handshake.js';

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
    ws.send(clientProof(cookie, as, target, nonce, res.headers[HEADER_NONCE]!));
    const first = await Promise.race([once(ws, 'message').then(([d]) => d as Buffer), closed.then(() => undefined)]);
    if (first && !first.equals(ACCEPT_FRAME)) throw new Error('unexpected handshake answer');
  }
  return { ws, closed };
}
