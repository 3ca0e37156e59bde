/**
 * Functions the examples run on runners through moduleRef(...): the runner imports this module
 * itself, so it may use imports and keep module state (unlike a shipped closure).
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { callSignal } from '../src/index.js';

/** A "thumbnail": hashes the input `rounds` times (a little CPU work). */
export function render(input: { name: string; rounds: number }): { name: string; digest: string; pid: number } {
  let digest = input.name;
  for (let i = 0; i < input.rounds; i++) digest = createHash('sha256').update(digest).digest('hex');
  return { name: input.name, digest: digest.slice(0, 12), pid: process.pid };
}

/** An application error with its own class and code: both reach the caller. */
export class InvoiceError extends Error {
  readonly code = 'E_INVOICE_LOCKED';
  constructor(readonly invoice: string) {
    super(`invoice ${invoice} is locked by another job`);
  }
  override get name(): string {
    return 'InvoiceError';
  }
}

export function chargeInvoice(invoice: string): never {
  throw new InvoiceError(invoice);
}

export function parseAmount(text: string): number {
  const n = Number(text);
  if (!Number.isFinite(n)) throw new RangeError(`not an amount: ${JSON.stringify(text)}`);
  return n;
}

/** How the last cooperative job ended, kept in module state on the runner. */
let lastStop: { steps: number; reason: string } | undefined;

/** Works in 100 ms steps until done or until its call is cancelled (callSignal aborts). */
export async function longReport(steps: number): Promise<number> {
  const signal = callSignal(); // synchronously, before the first await
  for (let done = 0; done < steps; done++) {
    if (signal.aborted) {
      lastStop = { steps: done, reason: String((signal.reason as Error)?.name ?? signal.reason) };
      throw signal.reason;
    }
    await sleep(100);
  }
  return steps;
}

/** What the runner recorded when `longReport` stopped (waits up to 2 s for it). */
export async function lastCancellation(): Promise<{ steps: number; reason: string } | undefined> {
  for (let i = 0; i < 20 && !lastStop; i++) await sleep(100);
  return lastStop;
}
