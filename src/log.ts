/**
 * A minimal levelled logger. FLAME's `log` option is a level or `false`; ours is the same, plus
 * either a sink of lines (`logSink`) or a structured logger (`logger`: pino, or anything with its
 * shape) that receives a fields object (`pool`, `node`, `runner`...) and the message.
 */
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];

/** Where log lines go: `(level, message)`. Defaults to stderr. */
export type LogSink = (level: LogLevel, message: string) => void;

/** Structured fields of a log record. */
export type LogFields = Record<string, unknown>;

/**
 * A pino-compatible logger: each level method is called with a fields object and the message,
 * `child(bindings)` returns a logger adding `bindings` to every record. `isLevelEnabled`, when
 * present, spares building messages the logger would drop.
 */
export interface StructuredLogger {
  error(fields: LogFields, message: string): void;
  warn(fields: LogFields, message: string): void;
  info(fields: LogFields, message: string): void;
  debug(fields: LogFields, message: string): void;
  child(bindings: LogFields): StructuredLogger;
  isLevelEnabled?(level: string): boolean;
}

export interface Logger {
  error(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  debug(message: string, fields?: LogFields): void;
  enabled(level: LogLevel): boolean;
  /** A logger writing to the same place with a longer prefix and, for a structured logger, more fields. */
  child(prefix: string, fields?: LogFields): Logger;
}

const defaultSink: LogSink = (level, message) => {
  process.stderr.write(`${new Date().toISOString()} ${level.padEnd(5)} ${message}\n`);
};

const NO_FIELDS: LogFields = Object.freeze({});

/** True when `value` has the methods of a {@link StructuredLogger} (for option validation). */
export function isStructuredLogger(value: unknown): value is StructuredLogger {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return ['error', 'warn', 'info', 'debug', 'child'].every((m) => typeof v[m] === 'function');
}

/**
 * `level: false` logs nothing; otherwise lines at `level` and more severe ones go to `structured`
 * when given (with `fields` bound; the prefix of this logger is left out, the fields say it),
 * else to `sink` prefixed with `prefix`.
 */
export function createLogger(
  level: LogLevel | false,
  prefix = '',
  sink: LogSink = defaultSink,
  structured?: { logger: StructuredLogger; fields?: LogFields },
): Logger {
  const max = level === false ? -1 : LOG_LEVELS.indexOf(level);
  const make = (p: string, target: StructuredLogger | undefined, childPrefix: string): Logger => {
    const on = (lvl: LogLevel) => LOG_LEVELS.indexOf(lvl) <= max && (target?.isLevelEnabled?.(lvl) ?? true);
    const at = (lvl: LogLevel) => {
      if (LOG_LEVELS.indexOf(lvl) > max) return () => {};
      if (target) {
        return (message: string, fields?: LogFields) => {
          if (target.isLevelEnabled?.(lvl) === false) return;
          target[lvl](fields ?? NO_FIELDS, childPrefix ? `${childPrefix} ${message}` : message);
        };
      }
      return (message: string) => sink(lvl, p ? `${p} ${message}` : message);
    };
    return {
      error: at('error'),
      warn: at('warn'),
      info: at('info'),
      debug: at('debug'),
      enabled: on,
      child: (more, fields) => {
        const join = (a: string) => (a && more ? `${a} ${more}` : a || more);
        return make(join(p), target && fields ? target.child(fields) : target, join(childPrefix));
      },
    };
  };
  const root = structured ? structured.logger.child(structured.fields ?? NO_FIELDS) : undefined;
  return make(prefix, root, '');
}

/** Reads and checks a `logger` option: undefined, or a {@link StructuredLogger}. */
export function loggerOption(r: { raw(key: string): unknown; fail(key: string, expected: string): never }): StructuredLogger | undefined {
  const value = r.raw('logger');
  if (value === undefined) return undefined;
  if (!isStructuredLogger(value)) r.fail('logger', 'a pino-compatible logger: an object with error, warn, info, debug and child methods');
  return value;
}
