/**
 * The Node flags of the parent that decide how code is loaded: a runner started with them loads
 * the app's code as the app does (TypeScript through tsx's or ts-node's loaders, Node's type
 * stripping, custom conditions, module detection), without the user repeating them.
 */

/** Flags whose value is the next argument when not given as `--flag=value`. */
const WITH_VALUE = new Set(['--import', '--loader', '--experimental-loader', '--require', '-r', '--conditions', '-C', '--experimental-policy']);
/** Flags kept whatever their value. */
const KEPT = new Set([...WITH_VALUE, '--enable-source-maps']);

/**
 * The flags of `execArgv` (default: this process's) that a runner needs: `--import`, `--loader`,
 * `--require`, `--conditions` with their values, and every `--experimental-*` or
 * `--no-experimental-*` flag, in their order.
 */
export function loaderFlags(execArgv: readonly string[] = process.execArgv): string[] {
  const kept: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const arg = execArgv[i]!;
    const name = arg.startsWith('--') ? arg.split('=', 1)[0]! : arg;
    const experimental = name.startsWith('--experimental-') || name.startsWith('--no-experimental-');
    if (!KEPT.has(name) && !experimental) continue;
    kept.push(arg);
    if (WITH_VALUE.has(name) && !arg.includes('=') && i + 1 < execArgv.length) kept.push(execArgv[++i]!);
  }
  return kept;
}
