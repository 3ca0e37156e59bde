/**
 * The node a pool's runners connect back to. Pools that are not given one share a process-wide
 * parent node, started on first use and stopped when its last pool stops, so a script that
 * stops its pools can exit.
 */
import { randomBytes } from 'node:crypto';
import { hasExplicitPort } from '../cluster/address.js';
import { startNode, type ClusterNode } from '../cluster/node.js';
import { InvalidOptionError } from '../errors.js';
import { POOL_DEFAULTS } from './options.js';
import type { LogLevel, LogSink, StructuredLogger } from '../log.js';

interface Shared {
  node: Promise<ClusterNode>;
  users: number;
  maxPayload: number;
}

/** One shared node per kind of link: plaintext (or as FLAME_TLS says), and encrypted. */
const shared = new Map<boolean, Shared>();

/**
 * Acquires the shared parent node: named as `startNode` names a node, FLAME_NODE_NAME or
 * RELEASE_NODE (`app@$(POD_IP)`), else `flame-parent@$POD_IP` (else 127.0.0.1); on the port in
 * that name, else FLAME_PORT, else a free port; with FLAME_COOKIE (else a random cookie, which
 * the pool hands to runners). `encrypted` (a backend that asks for it, e.g. Kubernetes): the
 * node uses `tls: 'auto'`; otherwise `FLAME_TLS` decides. Its runners follow it (the `tls` field
 * of FLAME_PARENT).
 */
export function acquireParentNode(
  log: LogLevel | false,
  logSink: LogSink | undefined,
  maxPayload: number = POOL_DEFAULTS.maxPayload,
  logger?: StructuredLogger,
  encrypted = false,
): Promise<ClusterNode> {
  let entry = shared.get(encrypted);
  if (entry && entry.maxPayload < maxPayload) {
    throw new InvalidOptionError(
      `Pool.start: option "maxPayload" (${maxPayload} bytes) is larger than the shared parent node's (${entry.maxPayload} bytes, set by the pool that started it): ` +
        'start the pool with the largest maxPayload first, or give this pool its own node: Pool.start({ node: await startNode({ maxPayload }) })',
      { option: 'maxPayload', expected: `at most ${entry.maxPayload}` },
    );
  }
  if (!entry) {
    const env = process.env;
    const attempt: Shared = {
      users: 0,
      maxPayload,
      node: startNode({
        name: env.FLAME_NODE_NAME || env.RELEASE_NODE || 'flame-parent',
        ...(hasExplicitPort(env.FLAME_NODE_NAME || env.RELEASE_NODE || '') ? {} : { port: env.FLAME_PORT ? Number(env.FLAME_PORT) : 0 }),
        cookie: env.FLAME_COOKIE || env.RELEASE_COOKIE || randomBytes(24).toString('base64url'),
        log: log === false ? 'warn' : log,
        maxPayload,
        ...(logSink ? { logSink } : {}),
        ...(logger ? { logger } : {}),
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
