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

let shared: { node: Promise<ClusterNode>; users: number; maxPayload: number } | undefined;

/**
 * Acquires the shared parent node: named as `startNode` names a node, FLAME_NODE_NAME or
 * RELEASE_NODE (`app@$(POD_IP)`), else `flame-parent@$POD_IP` (else 127.0.0.1); on the port in
 * that name, else FLAME_PORT, else a free port; with FLAME_COOKIE (else a random cookie, which
 * the pool hands to runners).
 */
export function acquireParentNode(log: LogLevel | false, logSink: LogSink | undefined, maxPayload: number = POOL_DEFAULTS.maxPayload, logger?: StructuredLogger): Promise<ClusterNode> {
  if (shared && shared.maxPayload < maxPayload) {
    throw new InvalidOptionError(
      `Pool.start: option "maxPayload" (${maxPayload} bytes) is larger than the shared parent node's (${shared.maxPayload} bytes, set by the pool that started it): ` +
        'start the pool with the largest maxPayload first, or give this pool its own node: Pool.start({ node: await startNode({ maxPayload }) })',
      { option: 'maxPayload', expected: `at most ${shared.maxPayload}` },
    );
  }
  if (!shared) {
    const env = process.env;
    shared = {
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
      }),
    };
    const attempt = shared;
    attempt.node.catch(() => {
      if (shared === attempt) shared = undefined;
    });
  }
  shared.users++;
  return shared.node;
}

/** Releases the shared node; the last user stops it. */
export async function releaseParentNode(node: ClusterNode): Promise<void> {
  if (!shared || (await shared.node) !== node) return;
  if (--shared.users > 0) return;
  shared = undefined;
  await node.stop();
}
