/**
 * Node options: types, defaults (in one place) and validation. Identity can come from the
 * environment the way the seed's pods get it: `FLAME_NODE_NAME` (or `RELEASE_NODE`) such as
 * `app@$(POD_IP)`, else `POD_IP` as the host, and `FLAME_COOKIE` (or `RELEASE_COOKIE`).
 */
import { MissingEnvError } from '../errors.js';
import { LOG_LEVELS, loggerOption, type LogLevel, type LogSink, type StructuredLogger } from '../log.js';
import { OptionReader } from '../validate.js';
import { DEFAULT_PORT, hasExplicitPort, isValidShortName, parseNodeName } from './address.js';

export interface TlsOptions {
  /** PEM private key of this node's certificate. */
  key: string | Buffer;
  /** PEM certificate; must carry the IP SAN of the host peers dial. */
  cert: string | Buffer;
  /** PEM CA that signed the peers' certificates (defaults to Node's trust store). */
  ca?: string | Buffer;
}

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
  /** Serve and dial over TLS (`wss`). */
  tls?: TlsOptions;
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
  tls: TlsOptions | undefined;
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
  'handshakeTimeout', 'maxQueuedMessages', 'tls', 'log', 'logSink', 'logger',
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
  const tls = r.raw('tls') as TlsOptions | undefined;
  if (tls !== undefined && (typeof tls !== 'object' || tls === null || !tls.key || !tls.cert)) {
    r.fail('tls', 'an object { key, cert, ca? } of PEM strings or Buffers');
  }
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
    tls,
    log,
    logSink,
    logger: loggerOption(r),
  };
}
