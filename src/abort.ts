/**
 * One listener per AbortSignal, however many calls share it: a signal shared by many waiting
 * calls would otherwise collect a listener each and trip Node's MaxListenersExceededWarning.
 */
const subscribers = new WeakMap<AbortSignal, Set<() => void>>();

/** Calls `onAbort` once when `signal` aborts; returns the unsubscribe function. */
export function onAbort(signal: AbortSignal, onAbort: () => void): () => void {
  let set = subscribers.get(signal);
  if (!set) {
    const created = new Set<() => void>();
    set = created;
    subscribers.set(signal, created);
    signal.addEventListener('abort', () => {
      subscribers.delete(signal);
      for (const callback of created) callback();
    }, { once: true });
  }
  const callbacks = set;
  callbacks.add(onAbort);
  return () => {
    callbacks.delete(onAbort);
  };
}
