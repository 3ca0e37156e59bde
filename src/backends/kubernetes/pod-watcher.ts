/**
 * One watch per pool on its runner pods (a label selector), instead of polling each pod: a list
 * gives the state and a resourceVersion, then a watch streams every change from there. The watch
 * is kept alive across everything a real API server does to it: a dropped connection or a
 * server-side timeout resumes from the last resourceVersion seen (bookmarks included); a 410
 * Gone (history compacted) relists and reports pods that vanished meanwhile as DELETED; refusals
 * and outages are retried with backoff. client-node 1.4.0's Watch has no inactivity timeout, and a
 * connection that died without a FIN (a node or NAT gone) stays open for ever, so a silent
 * connection is cut here: after about two bookmark intervals once the server's bookmarks have
 * been seen (an API server sends one about every minute), else after `timeoutSeconds` plus a margin.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { backoffDelay, type BackoffPolicy } from '../../backoff.js';
import { KubernetesError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { KubernetesClient, WatchEventType } from './client.js';

export type PodEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface PodWatcherOptions {
  client: KubernetesClient;
  namespace: string;
  labelSelector: string;
  logger: Logger;
  onEvent: (type: PodEventType, pod: V1Pod) => void;
  /** Server-side duration of one watch request (default 4-5 minutes, jittered so pools do not reconnect together). */
  timeoutSeconds?: number;
}

/** Backoff between failed watch requests. */
const WATCH_BACKOFF: BackoffPolicy = { baseMs: 250, maxMs: 10_000 };
/** Beyond the server-side timeout, how long a silent connection is trusted. */
const INACTIVITY_MARGIN_MS = 60_000;
/** Until bookmarks have been seen, the interval an API server sends them at. */
const DEFAULT_BOOKMARK_INTERVAL_MS = 60_000;
/** How many bookmark intervals of silence mean the connection is dead. */
const SILENT_INTERVALS = 2;
/** Slack for a bookmark sent a little late. */
const BOOKMARK_SLACK_MS = 1000;
/** A stream ending sooner than this without any event counts as a failure (no reconnect storm). */
const MIN_HEALTHY_MS = 1000;

export class PodWatcher {
  readonly #o: PodWatcherOptions;
  readonly #pods = new Map<string, V1Pod>();
  readonly #timeoutSeconds: number;
  #resourceVersion = '';
  #controller: AbortController | undefined;
  #generation = 0;
  #failures = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  #inactivityTimer: NodeJS.Timeout | undefined;
  #stopped = false;
  readonly #emptyWaiters = new Set<() => void>();
  #reconnects = 0;
  #relists = 0;
  #lastBookmark: number | undefined;
  /** The longest gap seen between two bookmarks on one connection. */
  #bookmarkInterval: number | undefined;

  constructor(options: PodWatcherOptions) {
    this.#o = options;
    this.#timeoutSeconds = options.timeoutSeconds ?? 240 + Math.floor(Math.random() * 60);
  }

  /** Lists, then watches. Rejects with a KubernetesError when either is refused (RBAC, unreachable). */
  async start(): Promise<void> {
    await this.#relist(false);
    await this.#open(true);
  }

  /** Connections opened after the first one. */
  get reconnects(): number {
    return this.#reconnects;
  }

  /** Lists after the first one (on 410 Gone). */
  get relists(): number {
    return this.#relists;
  }

  /** The pods as last seen. */
  pods(): V1Pod[] {
    return [...this.#pods.values()];
  }

  /** Resolves true once no pod is left (as the watch sees it), false at the deadline. */
  untilEmpty(timeoutMs: number): Promise<boolean> {
    if (this.#pods.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish(false), timeoutMs);
      const finish = (empty: boolean) => {
        clearTimeout(timer);
        this.#emptyWaiters.delete(check);
        resolve(empty);
      };
      const check = () => {
        if (this.#pods.size === 0) finish(true);
      };
      this.#emptyWaiters.add(check);
    });
  }

  stop(): void {
    this.#stopped = true;
    this.#generation++;
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#inactivityTimer);
    this.#controller?.abort();
    this.#controller = undefined;
  }

  /** Lists and reconciles the cache, reporting what changed while we were not watching. */
  async #relist(report: boolean): Promise<void> {
    const { items, resourceVersion } = await this.#o.client.listPods(this.#o.namespace, this.#o.labelSelector);
    if (this.#stopped) return;
    const seen = new Set<string>();
    for (const pod of items) {
      const name = pod.metadata?.name;
      if (!name) continue;
      seen.add(name);
      const before = this.#pods.get(name);
      this.#pods.set(name, pod);
      if (!before) this.#emit('ADDED', pod);
      else if (report && before.metadata?.resourceVersion !== pod.metadata?.resourceVersion) this.#emit('MODIFIED', pod);
    }
    for (const [name, pod] of this.#pods) {
      if (seen.has(name)) continue;
      this.#pods.delete(name);
      this.#emit('DELETED', pod);
    }
    this.#resourceVersion = resourceVersion;
  }

  /** Opens one watch connection; `first` rethrows a refusal instead of retrying. */
  async #open(first: boolean): Promise<void> {
    const generation = ++this.#generation;
    const connection = { openedAt: performance.now(), events: 0, gone: false };
    const current = () => generation === this.#generation && !this.#stopped;
    const onEvent = (type: WatchEventType, object: unknown) => {
      if (!current()) return;
      connection.events++;
      this.#failures = 0;
      this.#armInactivity();
      const pod = object as V1Pod;
      const rv = pod?.metadata?.resourceVersion;
      switch (type) {
        case 'BOOKMARK': {
          if (rv) this.#resourceVersion = rv;
          const now = performance.now();
          if (this.#lastBookmark !== undefined) this.#bookmarkInterval = Math.max(this.#bookmarkInterval ?? 0, now - this.#lastBookmark);
          this.#lastBookmark = now;
          this.#armInactivity();
          return;
        }
        case 'ERROR': {
          const status = object as { code?: number; message?: string };
          if (status.code === 410) connection.gone = true;
          else this.#o.logger.warn(`pod watch error: ${status.code ?? ''} ${status.message ?? JSON.stringify(object)}`);
          return;
        }
        case 'ADDED':
        case 'MODIFIED':
        case 'DELETED': {
          if (rv) this.#resourceVersion = rv;
          const name = pod.metadata?.name;
          if (!name) return;
          if (type === 'DELETED') this.#pods.delete(name);
          else this.#pods.set(name, pod);
          this.#emit(type, pod);
          return;
        }
      }
    };
    // client-node calls `done` before its promise resolves when the server refuses the watch.
    let established = false;
    let early: { error: unknown } | undefined;
    const done = (error: unknown) => {
      if (!established) {
        early = { error: error ?? new KubernetesError('the pod watch ended before it started', { statusCode: 0, reason: 'WatchEnded', verb: 'watch', resource: 'pods', namespace: this.#o.namespace }) };
      }
      else if (current()) this.#ended(error, connection);
    };
    let controller: AbortController | undefined;
    try {
      controller = await this.#o.client.watchPods(
        this.#o.namespace,
        { labelSelector: this.#o.labelSelector, resourceVersion: this.#resourceVersion, allowWatchBookmarks: true, timeoutSeconds: this.#timeoutSeconds },
        onEvent,
        done,
      );
    } catch (error) {
      // Raised before any request was sent (e.g. an unreadable token file).
      early = { error };
    }
    established = true;
    if (early) {
      if (first) throw this.#o.client.watchError(this.#o.namespace, early.error);
      if (current()) this.#ended(early.error, connection);
      return;
    }
    if (!current()) {
      controller?.abort();
      return;
    }
    this.#controller = controller;
    this.#armInactivity();
  }

  /** A connection ended: resume, relist, or back off. */
  #ended(error: unknown, connection: { openedAt: number; events: number; gone: boolean }): void {
    clearTimeout(this.#inactivityTimer);
    this.#lastBookmark = undefined;
    this.#controller = undefined;
    if (connection.gone || (error as { statusCode?: number } | null)?.statusCode === 410) {
      this.#o.logger.debug('pod watch: resourceVersion too old (410 Gone), relisting');
      this.#schedule(0, true);
      return;
    }
    const healthy = connection.events > 0 || performance.now() - connection.openedAt >= MIN_HEALTHY_MS;
    if (!error && healthy) {
      this.#o.logger.debug('pod watch ended by the server; resuming');
      this.#schedule(0, false);
      return;
    }
    this.#failures++;
    const delay = backoffDelay(WATCH_BACKOFF, this.#failures);
    const why = error ? this.#o.client.watchError(this.#o.namespace, error).message : 'the stream ended at once';
    (this.#failures >= 3 ? this.#o.logger.warn : this.#o.logger.debug)(`pod watch dropped (${why}); resuming in ${Math.round(delay)} ms`);
    this.#schedule(delay, false);
  }

  #schedule(delay: number, relist: boolean): void {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => {
      if (this.#stopped) return;
      this.#reconnects++;
      const run = async () => {
        if (relist) {
          this.#relists++;
          await this.#relist(true);
        }
        await this.#open(false);
      };
      run().catch((error: KubernetesError) => {
        if (this.#stopped) return;
        this.#failures++;
        const next = Math.round(backoffDelay(WATCH_BACKOFF, this.#failures));
        (this.#failures >= 3 ? this.#o.logger.warn : this.#o.logger.debug)(`pod watch: ${error.message}; retrying in ${next} ms`);
        this.#schedule(next, true);
      });
    }, delay);
    this.#retryTimer.unref();
  }

  /** How long a connection may stay silent before it is taken for dead. */
  get silenceLimitMs(): number {
    const interval = this.#bookmarkInterval ?? DEFAULT_BOOKMARK_INTERVAL_MS;
    return Math.min(this.#timeoutSeconds * 1000 + INACTIVITY_MARGIN_MS, SILENT_INTERVALS * interval + BOOKMARK_SLACK_MS);
  }

  #armInactivity(): void {
    clearTimeout(this.#inactivityTimer);
    this.#inactivityTimer = setTimeout(() => {
      this.#o.logger.debug(`pod watch silent for ${Math.round(this.silenceLimitMs)} ms; reconnecting`);
      const controller = this.#controller;
      this.#generation++;
      this.#controller = undefined;
      this.#lastBookmark = undefined;
      controller?.abort();
      this.#schedule(0, false);
    }, this.silenceLimitMs);
    this.#inactivityTimer.unref();
  }

  #emit(type: PodEventType, pod: V1Pod): void {
    try {
      this.#o.onEvent(type, pod);
    } catch (error) {
      this.#o.logger.error(`pod event handler threw (ignored): ${(error as Error).message}`);
    }
    if (type === 'DELETED') for (const check of [...this.#emptyWaiters]) check();
  }
}
