/**
 * Starts a container's process. Three wrappers, each replaced by the next with `exec` so that the
 * container process keeps the pid the kubelet signals:
 *  - `setpriv --pdeathsig KILL`: the process gets SIGKILL if the emulator dies, so no pod outlives it;
 *  - `unshare --mount` + `mount --bind`: the pod's service-account folder appears at the standard
 *    `/var/run/secrets/kubernetes.io/serviceaccount`, in that process only (needs root);
 *  - its own process group (`detached`), so that stopping a pod reaches what it spawned as well.
 * Where a wrapper is not available the process starts without it (and the pod is told where its
 * service-account folder is through `FLAME_SERVICEACCOUNT_DIR`).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, isAbsolute, join, resolve } from 'node:path';

export const SERVICE_ACCOUNT_MOUNT = '/var/run/secrets/kubernetes.io/serviceaccount';

export type ServiceAccountMode = 'auto' | 'mount' | 'folder';

export interface LaunchSpec {
  command: string[];
  env: Record<string, string>;
  cwd: string;
  /** The folder holding `token`, `ca.crt` and `namespace` for this pod. */
  serviceAccountDir: string;
}

let mountSupport: boolean | undefined;
let pdeathsigSupport: boolean | undefined;

/** Wrappers are run by absolute path: a pod's own PATH must not decide whether they are found. */
function tool(name: string): string {
  return findExecutable(name, process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', '/') ?? name;
}

/** Whether a private mount namespace with a bind mount works here (root, unshare, mount). */
export function canMountServiceAccount(): boolean {
  if (mountSupport !== undefined) return mountSupport;
  mountSupport = false;
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return mountSupport;
  let probe: string | undefined;
  try {
    mkdirSync(SERVICE_ACCOUNT_MOUNT, { recursive: true });
    probe = mkdtempSync(join(tmpdir(), 'flame-emulator-probe-'));
    writeFileSync(join(probe, 'probe'), 'ok');
    const result = spawnSync(
      tool('unshare'),
      ['--mount', '--propagation', 'private', tool('sh'), '-c', `${tool('mount')} --bind "$0" "$1" && test -f "$1/probe"`, probe, SERVICE_ACCOUNT_MOUNT],
      { stdio: 'ignore', timeout: 5000 },
    );
    mountSupport = result.status === 0;
  } catch {
    mountSupport = false;
  } finally {
    if (probe) rmSync(probe, { recursive: true, force: true });
  }
  return mountSupport;
}

/** Whether `setpriv --pdeathsig` exists here (util-linux). */
export function canSetParentDeathSignal(): boolean {
  if (pdeathsigSupport !== undefined) return pdeathsigSupport;
  if (process.platform !== 'linux') return (pdeathsigSupport = false);
  const result = spawnSync(tool('setpriv'), ['--pdeathsig', 'KILL', 'true'], { stdio: 'ignore', timeout: 5000 });
  pdeathsigSupport = result.status === 0;
  return pdeathsigSupport;
}

/** Where `command` would be found, as execvp looks for it, or undefined. */
export function findExecutable(command: string, path: string | undefined, cwd: string): string | undefined {
  const candidates = command.includes('/')
    ? [isAbsolute(command) ? command : resolve(cwd, command)]
    : (path ?? '').split(delimiter).filter((d) => d.length > 0).map((d) => join(isAbsolute(d) ? d : resolve(cwd, d), command));
  for (const candidate of candidates) {
    try {
      if (statSync(candidate).isFile()) {
        accessSync(candidate, constants.X_OK);
        return candidate;
      }
    } catch {
      // not this one
    }
  }
  return undefined;
}

export class ProcessLauncher {
  readonly mountsServiceAccount: boolean;
  private readonly pdeathsig: boolean;

  constructor(mode: ServiceAccountMode) {
    this.mountsServiceAccount = mode === 'folder' ? false : canMountServiceAccount();
    if (mode === 'mount' && !this.mountsServiceAccount) {
      throw new Error(
        `serviceAccountMode 'mount' needs root and a working 'unshare --mount' to bind the token at ${SERVICE_ACCOUNT_MOUNT}; use 'auto' or 'folder'`,
      );
    }
    this.pdeathsig = canSetParentDeathSignal();
  }

  /** The folder the pod's process sees its service-account files in. */
  serviceAccountPathSeenByPod(serviceAccountDir: string): string {
    return this.mountsServiceAccount ? SERVICE_ACCOUNT_MOUNT : serviceAccountDir;
  }

  launch(spec: LaunchSpec): ChildProcess {
    let argv = [...spec.command];
    if (this.mountsServiceAccount) {
      argv = [
        tool('unshare'),
        '--mount',
        '--propagation',
        'private',
        tool('sh'),
        '-c',
        `${tool('mount')} --bind "$0" "$1" && shift && exec "$@"`,
        spec.serviceAccountDir,
        SERVICE_ACCOUNT_MOUNT,
        ...argv,
      ];
    }
    if (this.pdeathsig) argv = [tool('setpriv'), '--pdeathsig', 'KILL', ...argv];
    return spawn(argv[0]!, argv.slice(1), {
      cwd: spec.cwd,
      env: spec.env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }
}
