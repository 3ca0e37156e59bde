/**
 * Provisioning one runner: hand the backend a FLAME_PARENT token, then wait for the runner to
 * connect back and announce itself (SERVICE.ready), all within `bootTimeout`.
 */
import type { ClusterNode } from '../cluster/node.js';
import { BootError, BootTimeoutError } from '../errors.js';
import type { Backend } from './backend.js';
import type { ResolvedPoolOptions } from './options.js';
import { encodeParent, PARENT_ENV } from './parent.js';
import type { RunnerHandle } from './runner-handle.js';

export class Provisioner {
  readonly #o: ResolvedPoolOptions;
  readonly #backend: Backend;
  readonly #node: ClusterNode;
  /** Boots waiting for their runner to announce itself, by runner id. */
  readonly #pending = new Map<string, { resolve(node: string): void; reject(error: Error): void }>();

  constructor(o: ResolvedPoolOptions, backend: Backend, node: ClusterNode) {
    this.#o = o;
    this.#backend = backend;
    this.#node = node;
  }

  /** A runner announced itself from `node`; false when no boot waits for it (late, unknown). */
  connected(runnerId: string, node: string): boolean {
    const pending = this.#pending.get(runnerId);
    if (!pending) return false;
    pending.resolve(node);
    return true;
  }

  /** The backend saw a booting runner end: fail its boot now rather than at its deadline. */
  ended(runnerId: string, reason: string): void {
    this.#pending.get(runnerId)?.reject(new BootError(`runner ${runnerId} ended before it connected: ${reason}`));
  }

  /** Boots `runner`; resolves to its node name, or rejects with BootError/BootTimeoutError. */
  async provision(runner: RunnerHandle): Promise<string> {
    const controller = new AbortController();
    const timeout = this.#o.bootTimeout;
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const where = runner.instance?.description ?? this.#backend.describeBoot?.(runner.id);
        const error = new BootTimeoutError(`runner ${runner.id} did not boot and connect back within bootTimeout (${timeout} ms)${where ? ` (${where})` : ''}`);
        controller.abort(error);
        reject(error);
      }, timeout);
    });
    expired.catch(() => {});
    const connected = new Promise<string>((resolve, reject) => this.#pending.set(runner.id, { resolve, reject }));
    connected.catch(() => {});
    try {
      const token = encodeParent({
        parent: this.#node.name,
        runner: runner.id,
        pool: this.#o.name,
        backend: this.#backend.name,
        idleShutdownAfter: this.#o.idleShutdownAfter,
        shutdownTimeout: this.#o.shutdownTimeout,
        failsafeTimeout: this.#o.failsafeTimeout,
        bootTimeout: this.#o.bootTimeout,
        singleUse: this.#o.singleUse,
        log: this.#o.log,
        maxPayload: this.#o.maxPayload,
        tls: this.#node.encrypted,
      });
      const env = { [PARENT_ENV]: token, FLAME_COOKIE: this.#node.cookie };
      runner.instance = await Promise.race([
        this.#backend.boot({ id: runner.id, env, shutdownTimeout: this.#o.shutdownTimeout }, controller.signal),
        expired,
      ]);
      return await Promise.race([connected, expired]);
    } catch (error) {
      if (runner.instance) await this.#backend.shutdown(runner.instance).catch(() => {});
      if (error instanceof BootError || error instanceof BootTimeoutError) throw error;
      throw new BootError(`runner ${runner.id} failed to boot on backend ${this.#backend.name}: ${(error as Error).message}`, { cause: error });
    } finally {
      clearTimeout(timer);
      this.#pending.delete(runner.id);
    }
  }
}
