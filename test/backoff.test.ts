import { expect } from 'chai';
import { backoffDelay } from '../src/backoff.js';

describe('backoffDelay', () => {
  it('doubles from the base up to the ceiling', () => {
    const policy = { baseMs: 100, maxMs: 1000, jitter: false };
    expect([1, 2, 3, 4, 5, 50].map((n) => backoffDelay(policy, n))).to.deep.equal([100, 200, 400, 800, 1000, 1000]);
  });

  it('spreads the delay over its upper half with equal jitter', () => {
    const policy = { baseMs: 100, maxMs: 1000 };
    expect(backoffDelay(policy, 3, () => 0)).to.equal(200);
    expect(backoffDelay(policy, 3, () => 0.999999)).to.be.closeTo(400, 0.01);
  });
});
