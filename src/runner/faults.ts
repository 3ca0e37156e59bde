/**
 * Errors that shipped work leaves unhandled (a forgotten `await` whose promise rejects, a throw
 * in a timer callback) would end a Node process and every other call on it. A runner process
 * catches them instead: each is logged with its stack, reported to the parent (the pool emits
 * `runnerError`), and traced to the call that raised it where that can be known: the error's
 * stack names the closure (`flame://fn/<hash>.js`) or module of exactly one running call, which
 * then fails with that error. The other calls on the runner go on.
 */
import type { Logger } from '../log.js';
import type { RunnerFault } from '../flame/protocol.js';
import type { ActiveCall } from './services.js';

export type FaultKind = RunnerFault['kind'];

export interface FaultCatcherOptions {
  logger: Logger;
  /** The calls running now. */
  active: Iterable<ActiveCall>;
  /** Sends the report to the parent (best effort). */
  report(fault: RunnerFault): void;
}

const CLOSURE_ORIGIN = /flame:\/\/fn\/[0-9a-f]+\.js/;
/** Reports sent to the parent per second at most: a loop of failures must not flood the link (all are logged). */
const REPORTS_PER_SECOND = 20;

/** Installs the process-wide handlers; returns their removal. */
export function catchFaults(options: FaultCatcherOptions): () => void {
  let windowStart = 0;
  let sent = 0;
  const limited: FaultCatcherOptions = {
    ...options,
    report: (fault) => {
      const now = performance.now();
      if (now - windowStart >= 1000) {
        windowStart = now;
        sent = 0;
      }
      if (sent++ < REPORTS_PER_SECOND) options.report(fault);
    },
  };
  const handle = (kind: FaultKind) => (reason: unknown) => {
    try {
      onFault(kind, reason, limited);
    } catch {
      // Reporting must never be what ends the runner.
    }
  };
  const onException = handle('uncaughtException');
  const onRejection = handle('unhandledRejection');
  process.on('uncaughtException', onException);
  process.on('unhandledRejection', onRejection);
  return () => {
    process.off('uncaughtException', onException);
    process.off('unhandledRejection', onRejection);
  };
}

function onFault(kind: FaultKind, reason: unknown, { logger, active, report }: FaultCatcherOptions): void {
  const error = reason instanceof Error ? reason : undefined;
  const name = error ? error.name : typeof reason;
  const message = error ? error.message : describe(reason);
  const stack = error?.stack;
  const culprits = stack ? [...active].filter((call) => call.origin !== '' && stack.includes(call.origin)) : [];
  const origin = culprits[0]?.origin ?? (stack ? CLOSURE_ORIGIN.exec(stack)?.[0] : undefined);
  const failedCall = culprits.length === 1;
  if (failedCall) culprits[0]!.fail(error ?? (reason as Error));
  const where = origin ? ` in ${origin}` : '';
  const outcome = failedCall ? 'its call fails with it' : culprits.length > 1 ? `${culprits.length} running calls of it go on` : 'the runner goes on';
  logger.error(`${kind}${where} (${outcome}): ${stack ?? `${name}: ${message}`}`);
  report({ kind, name, message, stack, origin, failedCall });
}

function describe(value: unknown): string {
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
