/**
 * Watch streams as the real server writes them: one JSON event per line over a chunked 200
 * response, starting from a resourceVersion (or with the current state as ADDED events), with
 * optional bookmarks, a server-side timeout, and an in-stream `ERROR` event carrying 410 Expired
 * when the asked-for history is gone.
 *
 * Timing as kube-apiserver's: a watch without `timeoutSeconds` (or with 0) ends after a random
 * time between `--min-request-timeout` (1800 s) and twice that, so clients never rely on a watch
 * lasting forever; bookmarks, when asked for, come once a minute and once more 2 s before the
 * watch's deadline (the watch cache's heartbeat rule). Tests shorten both through the options.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { frozenJson } from './frozen-json.js';
import { ApiError, apiErrors } from './status.js';
import type { ObjectStore, StoreChange } from './store.js';
import type { KubeObject, StoredObject } from './types.js';

export type WatchEventKind = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface WatchRequest {
  resource: string;
  kind: string;
  /** Undefined watches every namespace (or a cluster-scoped resource). */
  namespace: string | undefined;
  matches: (object: KubeObject) => boolean;
  resourceVersion: string | undefined;
  allowBookmarks: boolean;
  sendInitialEvents: boolean;
  timeoutSeconds: number | undefined;
  /** Turns a stored object into what is sent (a Table row for kubectl, else the object itself). */
  encode: (object: StoredObject, first: boolean) => unknown;
}

interface OpenWatch {
  response: ServerResponse;
  close(): void;
}

export interface WatchTiming {
  /** Time between bookmarks (the real watch cache: one minute). */
  bookmarkIntervalMs: number;
  /** `--min-request-timeout`: a watch without its own timeout lasts this, times 1 to 2 at random (real: 1800 s). */
  minRequestTimeoutSeconds: number;
}

export const DEFAULT_WATCH_TIMING: WatchTiming = { bookmarkIntervalMs: 60_000, minRequestTimeoutSeconds: 1800 };

/** The last bookmark before a deadline comes this long before it, so the client resumes from a fresh revision. */
const PRE_TIMEOUT_BOOKMARK_MS = 2000;
/** setTimeout's largest delay; a longer watch (a huge `timeoutSeconds`) ends at that point instead. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class WatchHub {
  private readonly open = new Set<OpenWatch>();

  constructor(
    private readonly store: ObjectStore,
    private readonly timing: WatchTiming = DEFAULT_WATCH_TIMING,
  ) {}

  /** How long a watch asking for `timeoutSeconds` (undefined or 0: the server's choice) lasts, in ms. */
  timeoutMs(timeoutSeconds: number | undefined): number {
    if (timeoutSeconds !== undefined && timeoutSeconds > 0) return timeoutSeconds * 1000;
    return this.timing.minRequestTimeoutSeconds * 1000 * (1 + Math.random());
  }

  /**
   * Resolves true as soon as the store reaches `revision`, false after `waitMs` (a list at a
   * revision not there yet waits that long, as the real watch cache does).
   */
  waitForRevision(revision: number, waitMs: number): Promise<boolean> {
    if (this.store.resourceVersion >= revision) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (reached: boolean): void => {
        unsubscribe();
        clearTimeout(timer);
        resolve(reached);
      };
      const unsubscribe = this.store.subscribe((change) => {
        if (change.revision >= revision) done(true);
      });
      const timer = setTimeout(() => done(false), waitMs);
      timer.unref();
    });
  }

  get openCount(): number {
    return this.open.size;
  }

  serve(request: IncomingMessage, response: ServerResponse, watch: WatchRequest): void {
    const requested = watch.resourceVersion;
    let start: number | undefined;
    if (requested !== undefined && requested !== '' && requested !== '0') {
      if (!/^\d+$/.test(requested)) {
        throw apiErrors.badRequest(`resourceVersion: Invalid value: "${requested}": strconv.ParseUint: parsing "${requested}": invalid syntax`);
      }
      start = Number(requested);
    }
    response.writeHead(200, {
      'Content-Type': 'application/json',
      'Cache-Control': 'no-cache, private',
      'Transfer-Encoding': 'chunked',
    });
    response.flushHeaders();
    let first = true;
    const send = (type: WatchEventKind, object: unknown): void => {
      if (response.writableEnded) return;
      // A stored object's text is made once and shared by every watcher and GET (frozen-json.ts).
      response.write(`{"type":"${type}","object":${frozenJson(object)}}\n`);
    };
    const sendObject = (type: WatchEventKind, object: StoredObject): void => {
      send(type, watch.encode(object, first));
      first = false;
    };
    const bookmark = (annotations?: Record<string, string>): void => {
      const metadata: Record<string, unknown> = { resourceVersion: String(this.store.resourceVersion) };
      if (annotations) metadata.annotations = annotations;
      send('BOOKMARK', { kind: watch.kind, apiVersion: 'v1', metadata });
    };

    let backlog: StoreChange[] = [];
    if (start !== undefined) {
      try {
        backlog = this.store.changesSince(start);
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        send('ERROR', error.status);
        response.end();
        return;
      }
    }

    const onChange = (change: StoreChange): void => {
      if (change.resource !== watch.resource) return;
      if (watch.namespace !== undefined && change.namespace !== watch.namespace) return;
      const now = change.type !== 'DELETED' && watch.matches(change.object);
      const before = change.previous !== undefined && watch.matches(change.previous);
      if (change.type === 'ADDED' && now) sendObject('ADDED', change.object);
      else if (change.type === 'MODIFIED' && now) sendObject(before ? 'MODIFIED' : 'ADDED', change.object);
      else if (change.type === 'MODIFIED' && before) sendObject('DELETED', change.object);
      else if (change.type === 'DELETED' && before) sendObject('DELETED', change.object);
    };

    const unsubscribe = this.store.subscribe(onChange);
    const timers: NodeJS.Timeout[] = [];
    let bookmarkTimer: NodeJS.Timeout | undefined;
    const entry: OpenWatch = {
      response,
      close: () => {
        if (!response.writableEnded) response.end();
      },
    };
    this.open.add(entry);
    const cleanup = (): void => {
      unsubscribe();
      for (const t of timers) clearTimeout(t);
      clearTimeout(bookmarkTimer);
      this.open.delete(entry);
    };
    response.on('close', cleanup);
    request.on('close', () => {
      if (!response.writableEnded) response.end();
    });

    if (start === undefined) {
      for (const object of this.store.list(watch.resource, watch.namespace)) if (watch.matches(object)) sendObject('ADDED', object);
      if (watch.sendInitialEvents && watch.allowBookmarks) bookmark({ 'k8s.io/initial-events-end': 'true' });
    } else {
      for (const change of backlog) onChange(change);
    }
    const deadline = Date.now() + this.timeoutMs(watch.timeoutSeconds);
    if (watch.allowBookmarks) {
      const scheduleBookmark = (): void => {
        const now = Date.now();
        let at = now + this.timing.bookmarkIntervalMs;
        const preTimeout = deadline - PRE_TIMEOUT_BOOKMARK_MS;
        const last = preTimeout <= at;
        if (last) at = preTimeout;
        if (at < now) return;
        bookmarkTimer = setTimeout(() => {
          bookmark();
          // The one 2 s before the deadline is the last (a timer may fire a little early, so the time left cannot tell).
          if (!last) scheduleBookmark();
        }, Math.min(at - now, MAX_TIMER_MS));
        bookmarkTimer.unref();
      };
      scheduleBookmark();
    }
    const timeout = setTimeout(() => entry.close(), Math.min(deadline - Date.now(), MAX_TIMER_MS));
    timeout.unref();
    timers.push(timeout);
  }

  /** Cuts every open watch without ending the chunked body, as a broken connection would. */
  dropAll(): number {
    const count = this.open.size;
    for (const entry of [...this.open]) {
      entry.response.socket?.destroy();
      this.open.delete(entry);
    }
    return count;
  }

  /** Ends every open watch cleanly (a server-side timeout, or the server stopping). */
  closeAll(): number {
    const count = this.open.size;
    for (const entry of [...this.open]) entry.close();
    return count;
  }
}
