import { expect } from 'chai';
import { Deadlines } from '../../src/cluster/deadlines.js';
import { waitFor } from '../helpers/wait.js';

describe('Deadlines', function () {
  it('fires each deadline after its timeout, in order, unless cancelled', async function () {
    const deadlines = new Deadlines();
    const fired: string[] = [];
    const start = performance.now();
    deadlines.after(60, () => fired.push('a60'));
    const cancelled = deadlines.after(60, () => fired.push('b60'));
    deadlines.after(20, () => fired.push('c20'));
    deadlines.after(60, () => fired.push('d60'));
    cancelled.cancel();
    cancelled.cancel();
    await waitFor(() => fired.length === 3, 'three deadlines');
    expect(fired).to.deep.equal(['c20', 'a60', 'd60']);
    expect(performance.now() - start).to.be.at.least(58);
  });

  it('keeps memory bounded when many deadlines are cancelled behind a long-lived one', async function () {
    const deadlines = new Deadlines();
    let fired = 0;
    const first = deadlines.after(50, () => fired++);
    for (let i = 0; i < 20_000; i++) deadlines.after(50, () => fired++).cancel();
    const last = deadlines.after(50, () => fired++);
    await waitFor(() => fired === 2, 'the two live deadlines');
    first.cancel();
    last.cancel();
    expect(fired).to.equal(2);
  });

  it('lets a firing deadline schedule another', async function () {
    const deadlines = new Deadlines();
    const fired: number[] = [];
    deadlines.after(10, () => {
      fired.push(1);
      deadlines.after(10, () => fired.push(2));
    });
    await waitFor(() => fired.length === 2, 'the chained deadline');
    expect(fired).to.deep.equal([1, 2]);
  });
});
