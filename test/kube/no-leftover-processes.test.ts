/**
 * Root-level check, run once after the whole test run: no pod process started by the
 * emulated-cluster specifications may outlive it. Leftovers are killed, then reported as a failure.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { POD_MARKER } from './helpers.js';

function leftoverPodProcesses(): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes(POD_MARKER)) found.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

after('no emulated pod process survives the test run', function () {
  if (process.platform !== 'linux') this.skip();
  const leftovers = leftoverPodProcesses();
  for (const pid of leftovers) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  if (leftovers.length > 0) throw new Error(`pod processes survived the test run: ${leftovers.join(', ')}`);
});
