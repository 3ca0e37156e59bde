import { expect } from 'chai';
import { WarmUp } from '../../src/flame/warm-up.js';
import { waitFor } from '../helpers/wait.js';

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('WarmUp (the parent prepares a call\'s codec while its runners boot)', function () {
  it('works in slices between turns of the event loop and stops at the first slice after it is told', async function () {
    let checks = 0;
    let stop = false;
    let timerFired = false;
    const timer = setTimeout(() => (timerFired = true), 1);
    new WarmUp().run(() => {
      checks++;
      return stop;
    });
    await waitFor(() => checks >= 3 && timerFired, 'three slices and a timer between them', 5000);
    clearTimeout(timer);
    stop = true;
    const seen = checks;
    for (let i = 0; i < 5; i++) await turn();
    expect(checks).to.equal(seen + 1);
  });

  it('spends at most its budget, then does nothing more', async function () {
    const warmUp = new WarmUp(40);
    let lastCheck = performance.now();
    const started = performance.now();
    warmUp.run(() => {
      lastCheck = performance.now();
      return false;
    });
    await waitFor(() => performance.now() - lastCheck > 100, 'the budget to be spent', 10_000);
    // 40 ms of work in 1 ms slices; generous for a loaded machine.
    expect(lastCheck - started).to.be.below(3000);
    let checks = 0;
    warmUp.run(() => {
      checks++;
      return false;
    });
    for (let i = 0; i < 5; i++) await turn();
    expect(checks).to.equal(0);
  });
});
