/**
 * The services a parent node offers its runners (ready, idle, child exit). Installed once per
 * parent node and routed by pool name or runner id, since pools share a node.
 */
import type { ClusterNode } from '../cluster/node.js';
import { BootError } from '../errors.js';
import type { Pool } from './pool.js';
import { SERVICE, type ChildExitRequest, type FaultRequest, type ReadyRequest } from './protocol.js';

/** The parent-side services runners talk to, once per parent node, routed by pool name. */
export function installParentServices(node: ClusterNode, pools: Map<string, Pool>): void {
  const find = (runnerId: unknown): Pool | undefined => {
    if (typeof runnerId !== 'string') return undefined;
    for (const pool of pools.values()) if (pool.hasRunner(runnerId)) return pool;
    return undefined;
  };
  node.handle(SERVICE.ready, (payload, { peer }) => {
    const { runner, pool } = payload as ReadyRequest;
    const target = pools.get(pool);
    if (!target || !target.onReady(runner, peer)) {
      throw new BootError(`no pool on ${node.name} is booting runner ${runner} (pool ${pool}): it may have timed out`);
    }
    return true;
  });
  node.handle(SERVICE.idle, (payload) => {
    const { runner } = payload as { runner: string };
    return find(runner)?.onIdle(runner) ?? { stop: true };
  });
  node.handle(SERVICE.fault, (payload) => {
    const { runner, ...fault } = payload as FaultRequest;
    find(runner)?.onRunnerError(runner, fault);
    return true;
  });
  node.handle(SERVICE.childExit, (payload) => {
    const { runner, child } = payload as ChildExitRequest;
    find(runner)?.onChildExit(runner, child);
    return true;
  });
}
