/**
 * `flame-actors emulator`: the emulated Kubernetes cluster in the foreground (see
 * src/testing/kube/cli.ts, which reads its options from process.argv).
 */
export async function emulator(argv: string[]): Promise<void> {
  // The emulator's own parser reads process.argv after the script: leave it only the options.
  process.argv.splice(2, process.argv.length - 2, ...argv);
  await import('../testing/kube/cli.js');
}
