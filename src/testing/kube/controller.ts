/**
 * What every controller of the emulated cluster shares: it listens to the store's changes from
 * construction until `stop()`, and acts through the registry (so its writes are validated and
 * watched like anyone's).
 */
import type { Registry } from './registry.js';
import type { ObjectStore, StoreChange } from './store.js';

export abstract class StoreController {
  private readonly unsubscribe: () => void;
  protected stopped = false;

  constructor(
    protected readonly store: ObjectStore,
    protected readonly registry: Registry,
  ) {
    this.unsubscribe = store.subscribe((change) => {
      if (!this.stopped) this.onChange(change);
    });
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe();
  }

  protected abstract onChange(change: StoreChange): void;
}
