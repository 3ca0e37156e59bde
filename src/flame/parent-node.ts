/**
 * The node a pool's runners connect back to. Pools that are not given one share a process-wide
 * parent node, started on first use and stopped when its last pool stops, so a script that
 * stops its pools can exit.
 */
import { randomBytes } from 'node:crypto';
import { startNode, type ClusterNode } from '../cluster/node.js';
import type { LogLevel, LogSink } from '../log.js';

interface Shared {
  node: Promise<ClusterNode>;
  users: number;
}

/** One shared node per kind of link: plaintext (or as FLAME_TLS says), and encrypted. */
const shared = new Map<boolean, Shared>();

/**
 * Acquires the shared parent node: named `flame-parent@$POD_IP` (else 127.0.0.1), on FLAME_PORT
 * (else a free port), with FLAME_COOKIE (else a random cookie, which the pool hands to runners).
 * `encrypted` (a backend that asks for it, e.g. Kubernetes): the node uses `tls: 'auto'`;
 * otherwise `FLAME_TLS` decides. Its runners follow it (the `tls` field of FLAME_PARENT).
 */
export function acquireParentNode(log: LogLevel | false, logSink: LogSink | undefined, encrypted = false): Promise<ClusterNode> {
  let entry = shared.get(encrypted);
  if (!entry) {
    const env = process.env;
    const attempt: Shared = {
      users: 0,
      node: startNode({
        name: env.FLAME_NODE_NAME || 'flame-parent',
        port: env.FLAME_PORT ? Number(env.FLAME_PORT) : 0,
        cookie: env.FLAME_COOKIE || env.RELEASE_COOKIE || randomBytes(24).toString('base64url'),
        log: log === false ? 'warn' : log,
        ...(logSink ? { logSink } : {}),
        ...(encrypted ? { tls: 'auto' as const } : {}),
      }),
    };
    entry = attempt;
    shared.set(encrypted, attempt);
    attempt.node.catch(() => {
      if (shared.get(encrypted) === attempt) shared.delete(encrypted);
    });
  }
  entry.users++;
  return entry.node;
}

/** Releases the shared node; the last user stops it. */
export async function releaseParentNode(node: ClusterNode): Promise<void> {
  for (const [encrypted, entry] of shared) {
    if ((await entry.node.catch(() => undefined)) !== node) continue;
    if (--entry.users > 0) return;
    shared.delete(encrypted);
    await node.stop();
    return;
  }
}
