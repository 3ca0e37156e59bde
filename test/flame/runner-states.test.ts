import { expect } from 'chai';
import { createLogger, type LogLevel } from '../../src/log.js';
import {
  RUNNER_EVENTS, RUNNER_STATES, RunnerHandle, nextRunnerState, type RunnerEvent, type RunnerState,
} from '../../src/flame/runner-handle.js';

/** The whole table, written out: every (state, event) pair not listed here must be refused. */
const ALLOWED: [RunnerState, RunnerEvent, RunnerState][] = [
  ['booting', 'connected', 'ready'],
  ['booting', 'bootFailed', 'stopped'],
  ['ready', 'drain', 'draining'],
  ['ready', 'down', 'lost'],
  ['draining', 'down', 'lost'],
  ['draining', 'gone', 'stopped'],
  ['lost', 'gone', 'stopped'],
];

/** A handle driven into `state` through allowed events, logging into `lines`. */
function handleIn(state: RunnerState, lines: string[] = []): RunnerHandle {
  const runner = new RunnerHandle('t-1', 1, createLogger('debug', '', (_l: LogLevel, m: string) => lines.push(m)));
  const path: Record<RunnerState, RunnerEvent[]> = {
    booting: [],
    ready: ['connected'],
    draining: ['connected', 'drain'],
    lost: ['connected', 'down'],
    stopped: ['bootFailed'],
  };
  for (const event of path[state]) expect(runner.fire(event)).to.equal(true);
  expect(runner.state).to.equal(state);
  return runner;
}

describe('Runner lifecycle transition table', function () {
  for (const from of RUNNER_STATES) {
    for (const event of RUNNER_EVENTS) {
      const allowed = ALLOWED.find(([s, e]) => s === from && e === event);
      if (allowed) {
        it(`moves a ${from} runner to ${allowed[2]} on ${event}, and logs it at debug level`, function () {
          const lines: string[] = [];
          const runner = handleIn(from, lines);
          lines.length = 0;
          expect(runner.fire(event, 'why')).to.equal(true);
          expect(runner.state).to.equal(allowed[2]);
          expect(lines).to.deep.equal([`runner t-1: ${from} -> ${allowed[2]} (${event}: why)`]);
        });
      } else {
        it(`refuses ${event} for a ${from} runner and stays ${from}`, function () {
          const lines: string[] = [];
          const runner = handleIn(from, lines);
          lines.length = 0;
          expect(runner.fire(event)).to.equal(false);
          expect(runner.state).to.equal(from);
          expect(nextRunnerState(from, event)).to.equal(undefined);
          expect(lines).to.deep.equal([`runner t-1: ${event} refused in state ${from}`]);
        });
      }
    }
  }

  it('keeps the first reason a runner was given (a loss does not hide why it was draining)', function () {
    const runner = handleIn('ready');
    runner.fire('drain', 'idle');
    runner.fire('down', 'node down');
    expect(runner).to.include({ state: 'lost', reason: 'idle' });
  });

  it('only a ready runner takes work', function () {
    expect(RUNNER_STATES.filter((s) => handleIn(s).placeable)).to.deep.equal(['ready']);
  });
});
