#!/usr/bin/env node
/**
 * `flame-actors <command>`: the package's command line (`bin` in package.json).
 *   bench      measure pools on a backend (src/cli/bench.ts)
 *   emulator   run the emulated Kubernetes cluster (src/testing/kube/cli.ts)
 *   status     print the pools of a running app (src/cli/status.ts, src/observability/status.ts)
 */
import { isFlameError } from '../errors.js';
import { isRunner } from '../flame/parent.js';

const USAGE = `Usage: flame-actors <command> [options]

Commands:
  bench      measure throughput and latency of pools on a backend (flame-actors bench --help)
  emulator   run an emulated Kubernetes cluster on this machine (flame-actors emulator --help)
  status     print the pools of a running app that opened serveStatus() (flame-actors status --help)
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'bench': {
      const { bench } = await import('./bench.js');
      await bench(rest);
      return 0;
    }
    case 'status': {
      const { status } = await import('./status.js');
      await status(rest);
      return 0;
    }
    case 'emulator': {
      const { emulator } = await import('./emulator.js');
      await emulator(rest);
      return -1; // runs until a signal stops it
    }
    case undefined:
    case '--help':
    case 'help':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`flame-actors: unknown command ${JSON.stringify(command)}\n${USAGE}`);
      return 2;
  }
}

// Started by a pool as a runner (FLAME_PARENT set): in a cluster, runner pods are built from the
// pod running `flame-actors bench`, with its command, so the command doubles as the runner.
const ran = isRunner() ? import('../runner/runner.js').then(async ({ startRunner }) => {
  await startRunner();
  return -1; // the runner ends the process when its terminator says so
}) : main(process.argv.slice(2));

ran.then(
  (code) => {
    // Benchmarks leave nothing running, but a backend's keep-alive sockets may hold the loop a while.
    if (code >= 0) process.stdout.write('', () => process.exit(code));
  },
  (error: unknown) => {
    const known = error instanceof TypeError && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS');
    process.stderr.write(`flame-actors: ${error instanceof Error ? error.message : String(error)}\n`);
    if (!isFlameError(error) && !known && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
    process.exit(2);
  },
);
