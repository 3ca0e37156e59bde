/**
 * LocalBackend, FLAME's default in development: runners live in the parent's own process (each
 * with its own node on 127.0.0.1, so calls take exactly the path they take to a remote runner).
 * For unit tests and development; closures and module refs behave as on real runners.
 */
import type { Backend, BackendContext, RunnerInstance, RunnerSpec } from '../../flame/backend.js';
import { startRunner, type Runner } from '../../runner/runner.js';

interface LocalRunner extends RunnerInstance {
  runner: Runner | undefined;
  started: Promise<Runner | undefined>;
}

export class LocalBackend implements Backend {
  readonly name = 'local';
  readonly #runners = new Set<LocalRunner>();
  #context: BackendContext | undefined;

  async init(context: BackendContext): Promise<void> {
    this.#context = context;
  }

  async boot(spec: RunnerSpec): Promise<RunnerInstance> {
    const local: LocalRunner = { id: spec.id, description: 'in-process', runner: undefined, started: Promise.resolve(undefined) };
    this.#runners.add(local);
    // Not awaited: a runner is "started" here; it connects back and announces itself like any other.
    local.started = startRunner({
      env: { ...spec.env, POD_IP: '127.0.0.1', FLAME_PORT: '0' },
      handleSignals: false,
      exit: (code, reason) => {
        this.#runners.delete(local);
        this.#context?.runnerExited(spec.id, `in-process runner ended (${reason}, code ${code})`);
      },
    }).then(
      (runner) => (local.runner = runner),
      (error: Error) => {
        this.#runners.delete(local);
        this.#context?.runnerExited(spec.id, error.message);
        return undefined;
      },
    );
    return local;
  }

  async shutdown(instance: RunnerInstance): Promise<void> {
    const local = instance as LocalRunner;
    const runner = await local.started;
    if (runner) await runner.stop('shut down by the pool');
  }

  async dispose(): Promise<void> {
    await Promise.all([...this.#runners].map((r) => this.shutdown(r)));
  }
}
