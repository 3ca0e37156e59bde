/**
 * The FLAME_PARENT contract: how a booting runner learns who its parent is and how to behave.
 * A versioned base64url JSON token, per runner. Unlike FLAME's, versions are checked, not
 * discarded, and the token names the pool (flame#10). The cookie travels separately
 * (FLAME_COOKIE), so a token can be logged without leaking it.
 */
import { ParentTokenError } from '../errors.js';

export const PARENT_ENV = 'FLAME_PARENT';
export const TOKEN_VERSION = 1;

export interface ParentInfo {
  /** Token format version. */
  v: number;
  /** Parent node name, e.g. `flame-parent@10.0.0.4:4370`: the runner dials it. */
  parent: string;
  /** This runner's id, unique in its pool. */
  runner: string;
  /** Pool name. */
  pool: string;
  /** Backend name (`process`, `local`, `kubernetes`). */
  backend: string;
  /** Runner options chosen by the pool. */
  idleShutdownAfter: number;
  shutdownTimeout: number;
  failsafeTimeout: number;
  /** The parent abandons a boot after this long; the runner stops trying to join then. */
  bootTimeout: number;
  singleUse: boolean;
  log: string | false;
  /** Largest message between the pool and the runner, in bytes (the pool's `maxPayload`); absent: the node default. */
  maxPayload?: number;
  /** The parent's links are encrypted: the runner's node must use TLS too (`tls: 'auto'`). Absent: false. */
  tls?: boolean;
}

/** Encodes a token for `FLAME_PARENT`. */
export function encodeParent(info: Omit<ParentInfo, 'v'>): string {
  const json = JSON.stringify({ v: TOKEN_VERSION, ...info }, (_k, v) => (v === Infinity ? 'Infinity' : v));
  return Buffer.from(json).toString('base64url');
}

/** Decodes and validates a token; throws {@link ParentTokenError} saying what is wrong. */
export function decodeParent(token: string): ParentInfo {
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'), (_k, v) => (v === 'Infinity' ? Infinity : v));
  } catch {
    throw new ParentTokenError(`${PARENT_ENV} is not a valid token (expected base64url JSON from a flame-actors pool)`);
  }
  const t = raw as Partial<ParentInfo>;
  if (typeof t !== 'object' || t === null) throw new ParentTokenError(`${PARENT_ENV} is not a valid token`);
  if (t.v !== TOKEN_VERSION) {
    throw new ParentTokenError(`${PARENT_ENV} has version ${JSON.stringify(t.v)}, this runner understands version ${TOKEN_VERSION}: parent and runner must run the same flame-actors release`);
  }
  const need = (key: keyof ParentInfo, ok: boolean) => {
    if (!ok) throw new ParentTokenError(`${PARENT_ENV} is missing a valid "${key}"`);
  };
  need('parent', typeof t.parent === 'string' && t.parent.includes('@'));
  need('runner', typeof t.runner === 'string' && t.runner !== '');
  need('pool', typeof t.pool === 'string');
  need('backend', typeof t.backend === 'string');
  for (const k of ['idleShutdownAfter', 'shutdownTimeout', 'failsafeTimeout', 'bootTimeout'] as const) need(k, typeof t[k] === 'number' && t[k]! >= 0);
  need('singleUse', typeof t.singleUse === 'boolean');
  need('maxPayload', t.maxPayload === undefined || (Number.isInteger(t.maxPayload) && t.maxPayload >= 1024));
  need('tls', t.tls === undefined || typeof t.tls === 'boolean');
  return t as ParentInfo;
}

/** The parent of this process when it runs as a runner, else undefined. */
export function parentInfo(env: NodeJS.ProcessEnv = process.env): ParentInfo | undefined {
  const token = env[PARENT_ENV];
  return token ? decodeParent(token) : undefined;
}

/** True when this process was started by a pool as a runner (skip your web server then). */
export function isRunner(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env[PARENT_ENV]);
}
