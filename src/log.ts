/**
 * A minimal levelled logger. FLAME's `log` option is a level or `false`; ours is the same,
 * plus an optional sink so applications can route lines to their own logger.
 */
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];

/** Where log lines go: `(level, message)`. Defaults to stderr. */
export type LogSink = (level: LogLevel, message: string) => void;

export interface Logger {
  error(message: string): void;
  warn(message: string): void;
  info(message: string): void;
  debug(message: string): void;
  enabled(level: LogLevel): boolean;
  /** A logger writing to the same sink with a longer prefix. */
  child(prefix: string): Logger;
}

const defaultSink: LogSink = (level, message) => {
  process.stderr.write(`${new Date().toISOString()} ${level.padEnd(5)} ${message}\n`);
};

/** `level: false` logs nothing; otherwise lines at `level` and more severe ones. */
export function createLogger(level: LogLevel | false, prefix = '', sink: LogSink = defaultSink): Logger {
  const max = level === false ? -1 : LOG_LEVELS.indexOf(level);
  const make = (p: string): Logger => {
    const at = (lvl: LogLevel) => {
      const rank = LOG_LEVELS.indexOf(lvl);
      return rank <= max ? (message: string) => sink(lvl, p ? `${p} ${message}` : message) : () => {};
    };
    return {
      error: at('error'),
      warn: at('warn'),
      info: at('info'),
      debug: at('debug'),
      enabled: (lvl) => LOG_LEVELS.indexOf(lvl) <= max,
      child: (more) => make(p ? `${p} ${more}` : more),
    };
  };
  return make(prefix);
}
