/**
 * The bench command's progress: a bar redrawn in place on a terminal (stderr, so stdout stays the
 * result), plain lines elsewhere, nothing at all for `--json`.
 */
import { logUpdateStderr } from 'log-update';

export interface Progress {
  update(label: string, fraction: number): void;
  done(): void;
}

const WIDTH = 30;

export function createProgress(mode: 'bar' | 'lines' | 'silent'): Progress {
  if (mode === 'silent') return { update() {}, done() {} };
  if (mode === 'lines') {
    let last = '';
    return {
      update(label) {
        if (label !== last) process.stderr.write(`  ${label}\n`);
        last = label;
      },
      done() {},
    };
  }
  const started = performance.now();
  let label = 'starting';
  let fraction = 0;
  const draw = () => {
    const filled = Math.round(Math.min(1, fraction) * WIDTH);
    const seconds = Math.round((performance.now() - started) / 1000);
    logUpdateStderr(`[${'#'.repeat(filled)}${'-'.repeat(WIDTH - filled)}] ${String(Math.floor(fraction * 100)).padStart(3)}%  ${seconds}s  ${label}`);
  };
  // Redrawn every quarter second too, so the clock moves during a long step.
  const timer = setInterval(draw, 250);
  timer.unref();
  return {
    update(l, f) {
      label = l;
      fraction = Math.max(fraction, f);
      draw();
    },
    done() {
      clearInterval(timer);
      logUpdateStderr.clear();
      logUpdateStderr.done();
    },
  };
}
