/**
 * The slow path of a link's flush: when a whole batch does not encode (one message holds a
 * function, a symbol, a cycle) or does not fit in the peer's `maxPayload`, messages are encoded
 * one at a time, so that only the bad ones fail, and the rest are packed into frames that fit.
 */
import { EncodeError, PayloadTooLargeError } from '../errors.js';
import { encode } from './codec.js';
import { OP_DISPATCH_RUN } from './wire.js';

/** A queued message that could not be sent: `index` is its place in the batch (a run's members share it). */
export interface Unsent {
  index: number;
  message: unknown[];
  error: Error;
}

/** An encoded frame and how many messages it carries (a run counts its messages). */
export interface Frame {
  frame: Buffer;
  messages: number;
}

/** How many messages `entries` carry: one each, a dispatch run as many as it holds (for link:traffic). */
export function countMessages(entries: readonly unknown[]): number {
  let n = 0;
  for (const m of entries) n += Array.isArray(m) && m[0] === OP_DISPATCH_RUN && Array.isArray(m[2]) ? m[2].length : 1;
  return n;
}

/** msgpack array32 header for `count` elements: a frame is one array of messages. */
function arrayHeader(count: number): Buffer {
  const header = Buffer.alloc(5);
  header[0] = 0xdd;
  header.writeUInt32BE(count, 1);
  return header;
}

/**
 * Encodes `batch` message by message into frames of at most `maxPayload` bytes. A dispatch run
 * (`[OP_DISPATCH_RUN, path, messages]`) that fails as a whole is tried message by message, each
 * as a run of one, so one bad message does not take the others of its run with it.
 */
export function framesOneByOne(batch: unknown[][], maxPayload: number, node: string): { frames: Frame[]; unsent: Unsent[] } {
  const frames: Frame[] = [];
  const unsent: Unsent[] = [];
  let parts: Buffer[] = [];
  let size = 5;
  let messages = 0;
  const emit = () => {
    if (parts.length === 0) return;
    frames.push({ frame: Buffer.concat([arrayHeader(parts.length), ...parts]), messages });
    parts = [];
    size = 5;
    messages = 0;
  };
  const add = (index: number, message: unknown[], splittable: boolean) => {
    let encoded: Buffer;
    try {
      encoded = Buffer.from(encode(message));
    } catch (e) {
      if (splittable) return split(index, message);
      unsent.push({ index, message, error: e instanceof EncodeError ? e : new EncodeError(String(e)) });
      return;
    }
    if (encoded.length + 5 > maxPayload) {
      if (splittable) return split(index, message);
      unsent.push({
        index,
        message,
        error: new PayloadTooLargeError(
          `message of ${encoded.length} bytes exceeds the maxPayload of ${node} (${maxPayload} bytes); it was not sent`,
          { details: { size: encoded.length, limit: maxPayload, node } },
        ),
      });
      return;
    }
    if (size + encoded.length > maxPayload) emit();
    parts.push(encoded);
    size += encoded.length;
    messages += countMessages([message]);
  };
  const split = (index: number, run: unknown[]) => {
    for (const one of run[2] as unknown[]) add(index, [OP_DISPATCH_RUN, run[1], [one]], false);
  };
  for (let i = 0; i < batch.length; i++) {
    const message = batch[i]!;
    add(i, message, message[0] === OP_DISPATCH_RUN && Array.isArray(message[2]) && message[2].length > 1);
  }
  emit();
  return { frames, unsent };
}
