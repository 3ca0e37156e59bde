/** A stand-in for a link's WebSocket that records the frames written to it (decoded). */
import { EventEmitter } from 'node:events';
import { decode } from '../../src/cluster/codec.js';

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
