/** Waiting on events with a deadline: tests never sleep to synchronise. */
import type { EventEmitter } from 'node:events';

/**
 * Resolves when `condition()` is true; polls every `interval` ms (a few by default; more for a
 * costly check such as running kubectl); rejects after `timeout` ms naming `what`.
 */
export async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeout = 10_000, interval = 5): Promise<void> {
  const deadline = performance.now() + timeout;
  for (let attempt = 0; attempt < 100_000; attempt++) {
    if (await condition()) return;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, interval));
  }
  throw new Error(`gave up waiting for ${what}`);
}

/** The arguments of the next `event` of `emitter`, or a rejection after `timeout` ms. */
export function nextEvent<T extends unknown[] = unknown[]>(emitter: EventEmitter, event: string, timeout = 10_000, filter?: (...args: T) => boolean): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, listener);
      reject(new Error(`timed out after ${timeout} ms waiting for "${event}"`));
    }, timeout);
    const listener = (...args: unknown[]) => {
      if (filter && !filter(...(args as T))) return;
      clearTimeout(timer);
      emitter.off(event, listener);
      resolve(args as T);
    };
    emitter.on(event, listener);
  });
}

/** Rejects with the promise's error or resolves to it; fails if it takes more than `timeout` ms. */
export async function settlesWithin<T>(promise: Promise<T>, timeout: number, what: string): Promise<{ value?: T; error?: unknown; ms: number }> {
  const start = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${timeout} ms`)), timeout);
  });
  try {
    const value = await Promise.race([promise, limit]);
    return { value, ms: performance.now() - start };
  } catch (error) {
    if (error instanceof Error && error.message.startsWith(`${what} did not settle`)) throw error;
    return { error, ms: performance.now() - start };
  } finally {
    clearTimeout(timer);
  }
}
