/**
 * A runner's stdout and stderr are often pipes to its parent (ProcessBackend reads stderr to say
 * why a runner died). When the parent dies, the next write fails with EPIPE, which Node raises
 * as an 'error' event on the stream: unhandled, it would end the runner at once, cutting the
 * calls it is meant to drain. A runner process keeps going without its stdio instead.
 */
const guarded = new WeakSet<NodeJS.WriteStream>();

/** Ignores write errors of stdout and stderr (EPIPE, ECONNRESET...): their output is lost, the runner lives on. */
export function surviveLostStdio(): void {
  for (const stream of [process.stdout, process.stderr]) {
    if (guarded.has(stream)) continue;
    guarded.add(stream);
    stream.on('error', () => {
      // The reader is gone: nothing to tell it. Writes after this are dropped by the stream.
    });
  }
}
