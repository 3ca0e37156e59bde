/** Heap measurements after a full garbage collection, for leak tests (no --expose-gc needed). */
import v8 from 'node:v8';
import vm from 'node:vm';

v8.setFlagsFromString('--expose-gc');
// A new context created after the flag is set gets the `gc` function.
const gc = vm.runInNewContext('gc') as () => void;

/** `process.memoryUsage().heapUsed` after collecting garbage a few times (and letting finalizers run). */
export async function heapAfterGc(): Promise<number> {
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
  return process.memoryUsage().heapUsed;
}
