/**
 * The services a parent node offers its runners (ready, idle, child exit), and the registry of
 * the pools on each parent node. Runners announce themselves to the node, not to a pool, so the
 * services route each request by pool name or runner id. Pools register a {@link PoolInternals}
 * (the private core of a `Pool`), never the public object.
 */
import type { ClusterNode } from '../cluster/node.js';
import { BootError, InvalidOptionError } from '../errors.js';
import { SERVICE, type ChildExitRequest, type FaultRequest, type IdleReply, type ReadyRequest, type RunnerFault } from './protocol.js';

/** What the parent services need from a pool: its answers to its runners' requests. */
export interface PoolInternals {
  readonly name: string;
  hasRunner(runnerId: string): boolean;
  /** A runner announced itself; false when the pool is not booting it (late, unknown). */
  onReady(runnerId: string, node: string): boolean;
  /** A runner asks whether it may stop for idleness: the pool owns the counts. */
  onIdle(runnerId: string): IdleReply;
  /** A placed actor stopped: its slot is free. */
  onChildExit(runnerId: string, child: number): void;
  /** Shipped work left an error unhandled on a runner (which lives on). */
  onRunnerError(runnerId: string, fault: RunnerFault): void;
}

/** Pools by name on each parent node. */
const registry = new WeakMap<ClusterNode, Map<string, PoolInternals>>();

/**
 * Registers a pool on its parent node, installing the services on the node's first pool.
 * Throws {@link InvalidOptionError} when a pool of that name is already registered there.
 */
export function registerPool(node: ClusterNode, pool: PoolInternals): void {
  let pools = registry.get(node);
  if (!pools) {
    pools = new Map();
    registry.set(node, pools);
    installServices(node, pools);
  }
  if (pools.has(pool.name)) {
    throw new InvalidOptionError(`Pool.start: a pool named "${pool.name}" is already running on ${node.name}; give each pool its own name`, {
      option: 'name',
    });
  }
  pools.set(pool.name, pool);
}

/** Removes a pool from its node's registry (its runners' requests are then answered "stop"). */
export function unregisterPool(node: ClusterNode, pool: PoolInternals): void {
  const pools = registry.get(node);
  if (pools?.get(pool.name) === pool) pools.delete(pool.name);
}

function installServices(node: ClusterNode, pools: Map<string, PoolInternals>): void {
  const find = (runnerId: unknown): PoolInternals | undefined => {
    if (typeof runnerId !== 'string') return undefined;
    for (const pool of pools.values()) if (pool.hasRunner(runnerId)) return pool;
    return undefined;
  };
  node.handle(SERVICE.ready, (payload, { peer }) => {
    const { runner, pool } = (payload ?? {}) as Partial<ReadyRequest>;
    const target = typeof pool === 'string' ? pools.get(pool) : undefined;
    if (!target || typeof runner !== 'string' || !target.onReady(runner, peer)) {
      throw new BootError(`no pool on ${node.name} is booting runner ${String(runner)} (pool ${String(pool)}): it may have timed out`);
    }
    return true;
  });
  node.handle(SERVICE.idle, (payload) => {
    const runner = (payload as Partial<{ runner: unknown }> | null)?.runner;
    const pool = find(runner);
    return pool && typeof runner === 'string' ? pool.onIdle(runner) : { stop: true };
  });
  node.handle(SERVICE.fault, (payload) => {
    const { runner, ...fault } = (payload ?? {}) as Partial<FaultRequest>;
    const pool = find(runner);
    if (pool && typeof runner === 'string' && typeof fault.message === 'string') pool.onRunnerError(runner, fault as RunnerFault);
    return true;
  });
  node.handle(SERVICE.childExit, (payload) => {
    const { runner, child } = (payload ?? {}) as Partial<ChildExitRequest>;
    const pool = find(runner);
    if (pool && typeof runner === 'string' && typeof child === 'number') pool.onChildExit(runner, child);
    return true;
  });
}
