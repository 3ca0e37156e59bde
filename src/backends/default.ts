/**
 * `defaultBackend()`: the backend an app gets without choosing one, from FLAME_BACKEND, so an
 * app runs on Kubernetes in production and on local processes on a laptop (as a FLAME app picks
 * its backend with `config_env() == :prod`).
 */
import { InvalidOptionError } from '../errors.js';
import type { Backend } from '../flame/backend.js';
import { KubernetesBackend } from './kubernetes/backend.js';
import { LocalBackend } from './local/backend.js';
import { ProcessBackend } from './process/backend.js';

export const BACKEND_NAMES = ['process', 'local', 'kubernetes'] as const;

/** FLAME_BACKEND=`process` (default) | `local` | `kubernetes` (in a pod: POD_NAME, POD_NAMESPACE, the service account). */
export async function defaultBackend(env: NodeJS.ProcessEnv = process.env): Promise<Backend> {
  const name = env.FLAME_BACKEND || 'process';
  switch (name) {
    case 'process':
      return new ProcessBackend();
    case 'local':
      return new LocalBackend();
    case 'kubernetes':
      return new KubernetesBackend();
    default:
      throw new InvalidOptionError(`FLAME_BACKEND must be one of ${BACKEND_NAMES.join(', ')} (got ${JSON.stringify(name)})`);
  }
}
