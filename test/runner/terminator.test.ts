/** The runner's terminator: its states, and when it ends the runner. */
import { expect } from 'chai';
import { createLogger } from '../../src/log.js';
import { Terminator, TerminatorState, type TerminatorOptions } from '../../src/runner/terminator.js';
import { waitFor } from '../helpers/wait.js';

function terminator(options: Partial<TerminatorOptions> = {}): { t: Terminator; exits: { reason: string; code: number }[]; stopped: boolean[] } {
  const exits: { reason: string; code: number }[] = [];
  const stopped: boolean[] = [];
  const t = new Terminator({
    idleShutdownAfter: Infinity, shutdownTimeout: 2000, failsafeTimeout: 60_000, singleUse: false, logger: createLogger(false),
    askParentToStop: async () => true,
    stopChildren: (onlyLinked) => void stopped.push(onlyLinked),
    exit: (reason, code) => void exits.push({ reason, code }),
    ...options,
  });
  return { t, exits, stopped };
}

describe('Terminator', function () {
  it('goes booting -> running -> draining -> exiting, once, keeping the first reason', async function () {
    const { t, exits } = terminator();
    expect(t.state).to.equal(TerminatorState.booting);
    t.start();
    expect(t.state).to.equal(TerminatorState.running);
    expect(t.draining).to.equal(undefined);
    const first = t.drain('SIGTERM');
    const second = t.drain('asked by the parent');
    await Promise.all([first, second]);
    expect(t.state).to.equal(TerminatorState.exiting);
    expect(t.draining).to.equal('SIGTERM');
    expect(exits).to.deep.equal([{ reason: 'SIGTERM', code: 0 }]);
    t.start();
    expect(t.state).to.equal(TerminatorState.exiting);
  });

  it('waits for in-flight calls before exiting, at most shutdownTimeout', async function () {
    const { t, exits } = terminator({ shutdownTimeout: 5000 });
    t.start();
    t.callStarted();
    let ended = false;
    const drained = t.drain('SIGTERM').then(() => (ended = true));
    expect(t.draining).to.equal('SIGTERM');
    await new Promise((resolve) => setImmediate(resolve));
    expect(ended).to.equal(false);
    t.callEnded();
    await drained;
    expect(exits).to.have.length(1);
  });

  it('stops linked children at once when the parent is lost, then drains and exits', async function () {
    const { t, exits, stopped } = terminator();
    t.start();
    t.parentLost('connection lost');
    await waitFor(() => exits.length === 1, 'the runner to exit');
    expect(stopped).to.deep.equal([true, false]);
    expect(exits[0]!.reason).to.equal('parent lost: connection lost');
  });

  it('drains after its one call under singleUse', async function () {
    const { t, exits } = terminator({ singleUse: true });
    t.start();
    t.callStarted();
    t.callEnded();
    await waitFor(() => exits.length === 1, 'the runner to exit');
    expect(exits[0]!.reason).to.equal('single use: its call is done');
  });

  it('does not arm the failsafe once exiting (a boot aborted while joining leaves no timer behind)', async function () {
    const { t, exits } = terminator({ failsafeTimeout: 50 });
    await t.drain('aborted');
    t.armFailsafe('parent not reachable');
    // Asserting that something does not happen: wait past the failsafe's time (3x), then look.
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(exits).to.deep.equal([{ reason: 'aborted', code: 0 }]);
  });

  it('counts idleness from the last quick call, not from when its idle clock was armed', async function () {
    const asked: number[] = [];
    const { t } = terminator({ idleShutdownAfter: 150, askParentToStop: async () => {
      asked.push(performance.now());
      return false;
    } });
    t.start();
    const started = performance.now();
    // Quick calls for 250 ms: past one idle period, so the clock must have been pushed back.
    let last = started;
    while (performance.now() - started < 250) {
      t.quickCall();
      last = performance.now();
      // Paces the calls (not a synchronisation): one every 10 ms.
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await waitFor(() => asked.length > 0, 'the runner to ask its parent', 3000);
    expect(asked[0]! - last).to.be.at.least(140);
    await t.drain('test over');
  });

  it('drains after its one quick call under singleUse', async function () {
    const { t, exits } = terminator({ singleUse: true });
    t.start();
    t.quickCall();
    await waitFor(() => exits.length === 1, 'the single-use runner to exit', 3000);
    expect(t.draining).to.equal('single use: its call is done');
  });
});
