/**
 * A container's output (stdout and stderr interleaved, as the container runtime keeps it), bounded
 * in memory, with followers for `kubectl logs -f`, and the answer to the log subresource.
 */
import type { ServerResponse } from 'node:http';
import { integerParam, queryBool } from './query.js';

interface LogChunk {
  time: Date;
  data: Buffer;
}

export interface LogQuery {
  tailLines?: number;
  sinceSeconds?: number;
  timestamps?: boolean;
  limitBytes?: number;
}

export type LogFollower = (text: string) => void;

/** RFC 3339 with nanoseconds, as `kubectl logs --timestamps` shows. */
function timestamp(time: Date): string {
  return time.toISOString().replace(/\.(\d{3})Z$/, '.$1000000Z');
}

export class ContainerLog {
  private chunks: LogChunk[] = [];
  private size = 0;
  private readonly followers = new Set<{ write: LogFollower; end: () => void; timestamps: boolean }>();
  private ended = false;

  constructor(private readonly limitBytes: number) {}

  append(data: Buffer): void {
    const chunk = { time: new Date(), data };
    this.chunks.push(chunk);
    this.size += data.length;
    while (this.size > this.limitBytes && this.chunks.length > 1) this.size -= this.chunks.shift()!.data.length;
    for (const follower of this.followers) follower.write(follower.timestamps ? prefixLines(chunk) : data.toString('utf8'));
  }

  /** The container has stopped: followers get the end of the stream. */
  end(): void {
    this.ended = true;
    for (const follower of this.followers) follower.end();
    this.followers.clear();
  }

  get isEnded(): boolean {
    return this.ended;
  }

  read(query: LogQuery = {}): string {
    const since = query.sinceSeconds !== undefined ? Date.now() - query.sinceSeconds * 1000 : undefined;
    const chunks = since === undefined ? this.chunks : this.chunks.filter((c) => c.time.getTime() >= since);
    let text = query.timestamps ? chunks.map(prefixLines).join('') : Buffer.concat(chunks.map((c) => c.data)).toString('utf8');
    if (query.tailLines !== undefined) {
      const lines = text.split('\n');
      const trailing = lines[lines.length - 1] === '' ? lines.pop() : undefined;
      text = lines.slice(Math.max(0, lines.length - query.tailLines)).join('\n') + (trailing !== undefined && query.tailLines > 0 ? '\n' : '');
    }
    if (query.limitBytes !== undefined) text = Buffer.from(text).subarray(0, query.limitBytes).toString('utf8');
    return text;
  }

  /** Follows new output until the container stops or `unfollow` is called. */
  follow(write: LogFollower, end: () => void, timestamps = false): () => void {
    if (this.ended) {
      end();
      return () => {};
    }
    const follower = { write, end, timestamps };
    this.followers.add(follower);
    return () => this.followers.delete(follower);
  }
}

function prefixLines(chunk: LogChunk): string {
  const text = chunk.data.toString('utf8');
  const stamp = timestamp(chunk.time);
  return text
    .split(/(?<=\n)/)
    .map((line) => `${stamp} ${line}`)
    .join('');
}

/**
 * Answers `GET pods/NAME/log` from a container's log: `tailLines`, `sinceSeconds`, `limitBytes`,
 * `timestamps`, and `follow` (the body stays open until the container stops or the client goes).
 */
export function streamLog(response: ServerResponse, log: ContainerLog, query: URLSearchParams): void {
  const logQuery: LogQuery = { timestamps: queryBool(query, 'timestamps') };
  const tailLines = integerParam(query, 'tailLines');
  const sinceSeconds = integerParam(query, 'sinceSeconds');
  const limitBytes = integerParam(query, 'limitBytes');
  if (tailLines !== undefined) logQuery.tailLines = tailLines;
  if (sinceSeconds !== undefined) logQuery.sinceSeconds = sinceSeconds;
  if (limitBytes !== undefined) logQuery.limitBytes = limitBytes;
  response.writeHead(200, { 'Content-Type': 'text/plain', 'Cache-Control': 'no-cache, private' });
  response.write(log.read(logQuery));
  if (!queryBool(query, 'follow')) {
    response.end();
    return;
  }
  const unfollow = log.follow(
    (text) => response.write(text),
    () => response.end(),
    logQuery.timestamps,
  );
  response.on('close', unfollow);
}
