/**
 * One watch per pool on its runner pods (a label selector), instead of polling each pod: a list
 * gives the state and a resourceVersion, then a watch streams every change from there. The watch
 * is kept alive across everything a real API server does to it: a dropped connection or a
 * server-side timeout resumes from the last resourceVersion seen (bookmarks included); a 410
 * Gone (history compacted) relists and reports pods that vanished meanwhile as DELETED; refusals
 * and outages are retried with backoff. client-node 1.4.0's Watch has no inactivity timeout
 * (library-traps §2), so a silent connection is cut here after `timeoutSeconds` plus a margin.
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { KubernetesError } from '../../errors.js';
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

const BACKOFF_BASE_MS = 250;
const BACKOFF_MAX_MS = 10_000;
/** Beyond the server-side timeout, how long a silent connection is trusted. */
const INACTIVITY_MARGIN_MS = 60_000;
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
  /** Connections opened after the first (for logs and tests). */
  reconnects = 0;
  /** Relists after the first list (410 Gone). */
  relists = 0;

  constructor(options: PodWatcherOptions) {
    this.#o = options;
    this.#timeoutSeconds = options.timeoutSeconds ?? 240 + Math.floor(Math.random() * 60);
  }

  /** Lists, then watches. Rejects with a KubernetesError when either is refused (RBAC, unreachable). */
  async start(): Promise<void> {
    await this.#relist(false);
    await this.#open(true);
  }

  /** The pods as last seen. */
  pods(): V1Pod[] {
    return [...this.#pods.values()];
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
    const openedAt = performance.now();
    let events = 0;
    let gone = false;
    let refused: unknown;
    const current = () => generation === this.#generation && !this.#stopped;
    const onEvent = (type: WatchEventType, object: unknown) => {
      if (!current()) return;
      events++;
      this.#failures = 0;
      this.#armInactivity();
      const pod = object as V1Pod;
      const rv = pod?.metadata?.resourceVersion;
      switch (type) {
        case 'BOOKMARK':
          if (rv) this.#resourceVersion = rv;
          return;
        case 'ERROR': {
          const status = object as { code?: number; message?: string };
          if (status.code === 410) gone = true;
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
    const done = (error: unknown) => {
      if (!current()) {
        refused ??= error ?? new Error('watch ended before it started');
        return;
      }
      clearTimeout(this.#inactivityTimer);
      this.#controller = undefined;
      if (gone || (error as { statusCode?: number } | null)?.statusCode === 410) {
        this.#o.logger.debug('pod watch: resourceVersion too old (410 Gone), relisting');
        this.#schedule(0, true);
        return;
      }
      const healthy = events > 0 || performance.now() - openedAt >= MIN_HEALTHY_MS;
      if (!error && healthy) {
        this.#schedule(0, false);
        return;
      }
      this.#failures++;
      const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (this.#failures - 1)) * (0.5 + Math.random() / 2);
      const why = error ? this.#o.client.watchError(this.#o.namespace, error).message : 'the stream ended at once';
      (this.#failures >= 3 ? this.#o.logger.warn : this.#o.logger.debug)(`pod watch dropped (${why}); reconnecting in ${Math.round(delay)} ms`);
      this.#schedule(delay, false);
    };

    let controller: AbortController;
    try {
      controller = await this.#o.client.watchPods(
        this.#o.namespace,
        { labelSelector: this.#o.labelSelector, resourceVersion: this.#resourceVersion, allowWatchBookmarks: true, timeoutSeconds: this.#timeoutSeconds },
        onEvent,
        (error) => {
          // client-node calls done before resolving when the server refuses the watch.
          if (first && !opened) refused = error ?? new Error('watch ended before it started');
          else done(error);
        },
      );
    } catch (error) {
      // Raised before any request (e.g. an unreadable token file).
      if (first) throw this.#o.client.watchError(this.#o.namespace, error);
      done(error);
      return;
    }
    const opened = true;
    if (refused !== undefined) {
      if (first) throw this.#o.client.watchError(this.#o.namespace, refused);
      return;
    }
    if (!current()) {
      controller.abort();
      return;
    }
    this.#controller = controller;
    this.#armInactivity();
    if (first) {
      // From now on a failure of this connection reconnects instead of failing start().
      first = false;
    }
    void opened;
  }

  #schedule(delay: number, relist: boolean): void {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => {
      if (this.#stopped) return;
      this.reconnects++;
      const run = async () => {
        if (relist) {
          this.relists++;
          await this.#relist(true);
        }
        await this.#open(false);
      };
      run().catch((error: KubernetesError) => {
        if (this.#stopped) return;
        this.#failures++;
        const next = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (this.#failures - 1));
        (this.#failures >= 3 ? this.#o.logger.warn : this.#o.logger.debug)(`pod watch: ${error.message}; retrying in ${next} ms`);
        this.#schedule(next, true);
      });
    }, delay);
    this.#retryTimer.unref();
  }

  #armInactivity(): void {
    clearTimeout(this.#inactivityTimer);
    this.#inactivityTimer = setTimeout(() => {
      this.#o.logger.debug('pod watch silent for too long; reconnecting');
      const controller = this.#controller;
      this.#generation++;
      this.#controller = undefined;
      controller?.abort();
      this.#schedule(0, false);
    }, this.#timeoutSeconds * 1000 + INACTIVITY_MARGIN_MS);
    this.#inactivityTimer.unref();
  }

  #emit(type: PodEventType, pod: V1Pod): void {
    try {
      this.#o.onEvent(type, pod);
    } catch (error) {
      this.#o.logger.error(`pod event handler threw (ignored): ${(error as Error).message}`);
    }
  }
}
