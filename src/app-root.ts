/**
 * The app's root: where bare specifiers of shipped code (`await import('pkg')` in a closure,
 * `moduleRef('pkg', ...)`) resolve from on a runner, so they find what the app's own imports
 * find, whatever the runner's working directory.
 */
import { realpathSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Set by a backend (ProcessBackend) to the parent's app root, for runners started with flame-actors' own entry point. */
export const APP_ROOT_ENV = 'FLAME_APP_ROOT';

/**
 * flame-actors' own runner entry points, which are not the app: the compiled one, its bundle and
 * the bundle's starter (the bundle is built beside this file, so these paths hold in it too).
 */
const RUNNER_ENTRIES = ['./runner/main.js', './runner-bundle.cjs', './runner/start-bundle.cjs'].map((path) => fileURLToPath(new URL(path, import.meta.url)));

/**
 * FLAME_APP_ROOT when set; else the folder of this process's entry script (the app's entry
 * point, also when it doubles as the runner); else the working directory (a REPL, `node -e`).
 */
export function appRoot(env: NodeJS.ProcessEnv = process.env, entry: string | undefined = process.argv[1]): string {
  const given = env[APP_ROOT_ENV];
  if (given) return given;
  if (entry) {
    const script = real(resolve(entry));
    if (!RUNNER_ENTRIES.some((own) => real(own) === script)) return dirname(script);
  }
  return process.cwd();
}

function real(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}
