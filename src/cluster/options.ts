/**
 * Node options: types, defaults (in one place) and validation. Identity can come from the
 * environment the way FLAMEK8sBackend's pods get it: `FLAME_NODE_NAME` (or `RELEASE_NODE`) such as
 * `app@$(POD_IP)`, else `POD_IP` as the host, and `FLAME_COOKIE` (or `RELEASE_COOKIE`).
 */
import { MissingEnvError } from '../errors.js';
import { LOG_LEVELS, loggerOption, type LogLevel, type LogSink, type StructuredLogger } from '../log.js';
import { OptionReader } from '../validate.js';
import { DEFAULT_PORT, hasExplicitPort, isValidShortName, parseNodeName } from './address.js';
import type { LinkSecurity, TlsOptions } from './tls.js';

export type { TlsOptions } from './tls.js';

/** Imports a module by specifier and resolves to its namespace. */
export type ModuleLoader = (specifier: string) => Promise<Record<string, unknown>>;

export interface NodeOptions {
  /** `app` or a full `app@host[:port]`. Default: `FLAME_NODE_NAME`, `RELEASE_NODE`, else `flame`. */
  name?: string;
  /** Address to bind and to be reached at. Default: the host in `name`, else `POD_IP`, else 127.0.0.1. */
  host?: string;
  /** Port to listen on; 0 picks a free one (then part of the node name). Default 4370 or `FLAME_PORT`. */
  port?: number;
  /** Shared secret of the cluster. Default: `FLAME_COOKIE`, else `RELEASE_COOKIE`; required. */
  cookie?: string;
  /** Largest frame accepted from or sent to a peer, in bytes. Default 16 MiB. */
  maxPayload?: number;
  /** How often links are pinged. Default 5000 ms. */
  heartbeatInterval?: number;
  /**
   * A peer silent this long is down. Default 30000 ms: long enough for a runner busy with
   * synchronous CPU work (it cannot answer pings meanwhile); a closed socket is down at once.
   */
  heartbeatTimeout?: number;
  /**
   * Time allowed for a connection's handshake: for a dial to complete, and for an inbound
   * connection to prove the cookie from its first byte (short: unproven connections cost memory).
   * Default 3000 ms.
   */
  handshakeTimeout?: number;
  /** Messages queued for one peer before sends fail with OverloadedError. Default 1,000,000. */
  maxQueuedMessages?: number;
  /**
   * Encrypt links (`wss`, TLS 1.3). `'auto'`: an ephemeral self-signed certificate per process,
   * not verified; the cookie proofs are bound to the TLS session, which defeats a man in the
   * middle without any PKI. `{ key, cert, ca }`: your own certificates, verified against `ca`
   * (and bound the same way). `false`: plaintext. A node with TLS refuses plaintext peers.
   * Default: `FLAME_TLS` (`auto` or `off`), else false.
   */
  tls?: 'auto' | false | TlsOptions;
  /**
   * Loads the module of a `spawnRemote` on this node (the node that runs the factory). Default:
   * `import(specifier)`. A runner passes its function loader's, so that `spawnRemote` and a
   * pool's `placeChild` resolve modules by one rule.
   */
  loadModule?: ModuleLoader;
  /** Log level, or false. Default 'warn'. */
  log?: LogLevel | false;
  /** Where log lines go. Default: stderr. */
  logSink?: LogSink;
  /** A pino-compatible logger (instead of logSink); records carry `node`. */
  logger?: StructuredLogger;
}

export interface ResolvedNodeOptions {
  shortName: string;
  host: string;
  port: number;
  cookie: string;
  maxPayload: number;
  heartbeatInterval: number;
  heartbeatTimeout: number;
  handshakeTimeout: number;
  maxQueuedMessages: number;
  security: LinkSecurity;
  loadModule: ModuleLoader;
  log: LogLevel | false;
  logSink: LogSink | undefined;
  logger: StructuredLogger | undefined;
}

export const NODE_DEFAULTS = {
  name: 'flame',
  host: '127.0.0.1',
  maxPayload: 16 * 1024 * 1024,
  heartbeatInterval: 5000,
  heartbeatTimeout: 30_000,
  handshakeTimeout: 3000,
  maxQueuedMessages: 1_000_000,
  log: 'warn' as LogLevel | false,
} as const;

const KEYS = [
  'name', 'host', 'port', 'cookie', 'maxPayload', 'heartbeatInterval', 'heartbeatTimeout',
  'handshakeTimeout', 'maxQueuedMessages', 'tls', 'loadModule', 'log', 'logSink', 'logger',
] as const;

export function resolveNodeOptions(input: NodeOptions | undefined, env: NodeJS.ProcessEnv = process.env): ResolvedNodeOptions {
  const r = new OptionReader('startNode', input, KEYS);
  const rawName = r.string('name', env.FLAME_NODE_NAME || env.RELEASE_NODE || NODE_DEFAULTS.name);
  let shortName = rawName;
  let host: string | undefined;
  let port: number | undefined;
  if (rawName.includes('@')) {
    const parsed = parseNodeName(rawName);
    shortName = parsed.name;
    host = parsed.host;
    if (hasExplicitPort(rawName)) port = parsed.port;
  } else if (!isValidShortName(rawName)) {
    r.fail('name', 'a name of letters, digits, "_", "-" or ".", optionally followed by "@host[:port]"');
  }
  host = r.string('host', host ?? env.POD_IP ?? NODE_DEFAULTS.host);
  const envPort = env.FLAME_PORT !== undefined && env.FLAME_PORT !== '' ? Number(env.FLAME_PORT) : undefined;
  if (envPort !== undefined && (!Number.isInteger(envPort) || envPort < 0 || envPort > 65535)) {
    throw new MissingEnvError(`FLAME_PORT must be a port number from 0 to 65535 (got ${JSON.stringify(env.FLAME_PORT)})`);
  }
  port = r.int('port', port ?? envPort ?? DEFAULT_PORT, 0, 65535);
  const cookie = r.has('cookie') ? r.string('cookie', '') : env.FLAME_COOKIE || env.RELEASE_COOKIE;
  if (!cookie) {
    throw new MissingEnvError(
      'startNode: no cookie: pass { cookie } or set FLAME_COOKIE (or RELEASE_COOKIE) to the secret shared by the cluster',
    );
  }
  const heartbeatInterval = r.ms('heartbeatInterval', NODE_DEFAULTS.heartbeatInterval, { min: 10 });
  const heartbeatTimeout = r.ms('heartbeatTimeout', Math.max(NODE_DEFAULTS.heartbeatTimeout, heartbeatInterval * 2), { min: 20 });
  if (heartbeatTimeout <= heartbeatInterval) r.fail('heartbeatTimeout', `greater than heartbeatInterval (${heartbeatInterval} ms)`);
  const security = resolveSecurity(r, env);
  const log = r.oneOf<LogLevel | false>('log', NODE_DEFAULTS.log, [false, ...LOG_LEVELS]);
  const logSink = r.fn<LogSink>('logSink');
  return {
    shortName,
    host,
    port,
    cookie,
    maxPayload: r.int('maxPayload', NODE_DEFAULTS.maxPayload, 1024, 2 ** 31 - 1),
    heartbeatInterval,
    heartbeatTimeout,
    handshakeTimeout: r.ms('handshakeTimeout', NODE_DEFAULTS.handshakeTimeout, { min: 10 }),
    maxQueuedMessages: r.int('maxQueuedMessages', NODE_DEFAULTS.maxQueuedMessages, 1),
    security,
    loadModule: r.fn<ModuleLoader>('loadModule') ?? importModule,
    log,
    logSink,
    logger: loggerOption(r),
  };
}

const importModule: ModuleLoader = (specifier) => import(specifier) as Promise<Record<string, unknown>>;

function resolveSecurity(r: OptionReader, env: NodeJS.ProcessEnv): LinkSecurity {
  const expected = "'auto', false, or an object { key, cert, ca? } of PEM strings or Buffers";
  if (!r.has('tls')) {
    const fromEnv = env.FLAME_TLS ?? '';
    if (fromEnv === 'auto') return { mode: 'auto' };
    if (['', 'off', 'false'].includes(fromEnv)) return { mode: 'plain' };
    throw new MissingEnvError(`FLAME_TLS must be "auto" or "off" (got ${JSON.stringify(fromEnv)})`);
  }
  const tls = r.raw('tls');
  if (tls === false) return { mode: 'plain' };
  if (tls === 'auto') return { mode: 'auto' };
  const given = tls as Partial<TlsOptions> | null;
  if (typeof given !== 'object' || given === null || !given.key || !given.cert) r.fail('tls', expected);
  return { mode: 'pki', options: given as TlsOptions };
}
