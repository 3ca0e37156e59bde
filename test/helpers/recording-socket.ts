/** A link without a network: a WebSocket stand-in recording the frames written to it, and a peer's host. */
import { EventEmitter } from 'node:events';
import { decode } from '../../src/cluster/codec.js';
import type { PeerHost } from '../../src/cluster/peer.js';
import { WriteTurn } from '../../src/cluster/write-turn.js';
import { createLogger } from '../../src/log.js';

/** A quiet node's side of its peers (no heartbeats within a test), with `overrides`. */
export function peerHost(overrides: Partial<PeerHost> = {}): PeerHost {
  return {
    name: 'self@127.0.0.1',
    logger: createLogger(false),
    heartbeatInterval: 60_000,
    heartbeatTimeout: 120_000,
    maxQueuedMessages: 1000,
    writeTurn: new WriteTurn(),
    decodeContext: () => ({ peer: 'other', ref: () => null }),
    receive: () => {},
    dial: () => Promise.resolve(undefined),
    peerUp: () => {},
    peerDown: () => {},
    ...overrides,
  };
}

export class RecordingSocket extends EventEmitter {
  readonly OPEN = 1;
  readonly CLOSED = 3;
  readonly CLOSING = 2;
  readyState = 1;
  bufferedAmount = 0;
  readonly frames: unknown[][] = [];
  send(data: Buffer, _options: unknown, done?: () => void): void {
    this.frames.push(decode(data, { peer: 'test', ref: () => null }) as unknown[]);
    done?.();
  }
  close(): void {
    this.readyState = this.CLOSED;
  }
  terminate(): void {
    this.readyState = this.CLOSED;
  }
  ping(): void {}
}
