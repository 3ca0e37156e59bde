/**
 * LocalBackend, FLAME's default in development: runners live in the parent's own process (each
 * with its own node on 127.0.0.1, so calls take exactly the path they take to a remote runner).
 * For unit tests and development; closures and module refs behave as on real runners.
 */
import type { Backend, BackendContext, RunnerInstance, RunnerSpec } from '../../flame/backend.js';
import { startRunner } from '../../runner/runner.js';

interface LocalRunner extends RunnerInstance {
  /** Aborting it drains the runner, also while it is still joining its parent. */
  controller: AbortController;
  /** Resolves once the runner has ended (or failed to start). */
  ended: Promise<void>;
  shutdownTimeout: number;
}

/** Past its drain time, a runner that has not ended is given this long more before shutdown returns. */
const END_GRACE = 2000;

export class LocalBackend implements Backend {
  readonly name = 'local';
  readonly #runners = new Set<LocalRunner>();
  #context: BackendContext | undefined;

  async init(context: BackendContext): Promise<void> {
    this.#context = context;
  }

  async boot(spec: RunnerSpec, signal: AbortSignal): Promise<RunnerInstance> {
    const controller = new AbortController();
    const local: LocalRunner = { id: spec.id, description: 'in-process', controller, ended: Promise.resolve(), shutdownTimeout: spec.shutdownTimeout };
    this.#runners.add(local);
    signal.addEventListener('abort', () => controller.abort(), { once: true });
    // Not awaited: a runner is "started" here; it connects back and announces itself like any other.
    local.ended = startRunner({
      env: { ...spec.env, POD_IP: '127.0.0.1', FLAME_PORT: '0' },
      handleSignals: false,
      catchUncaught: false,
      signal: controller.signal,
      exit: (code, reason) => {
        this.#runners.delete(local);
        this.#context?.runnerExited(spec.id, `in-process runner ended (${reason}, code ${code})`);
      },
    }).then(
      (runner) => runner.ended,
      (error: Error) => {
        this.#runners.delete(local);
        this.#context?.runnerExited(spec.id, error.message);
      },
    );
    return local;
  }

  /** Drains the runner (or abandons its boot); resolves within its shutdownTimeout plus a grace. */
  async shutdown(instance: RunnerInstance): Promise<void> {
    const local = instance as LocalRunner;
    local.controller.abort();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([local.ended, new Promise((resolve) => (timer = setTimeout(resolve, local.shutdownTimeout + END_GRACE)))]);
    clearTimeout(timer);
  }

  async dispose(): Promise<void> {
    await Promise.all([...this.#runners].map((r) => this.shutdown(r)));
    this.#runners.clear();
  }
}
