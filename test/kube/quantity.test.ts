import { expect } from 'chai';
import fc from 'fast-check';
import { formatQuantity, parseQuantity } from '../../src/testing/kube/quantity.js';

describe('Resource quantities', function () {
  it('prints canonical forms as the API server does', function () {
    const cases: [string, string][] = [
      ['500m', '500m'],
      ['1000m', '1'],
      ['0.5', '500m'],
      ['1.5Gi', '1536Mi'],
      ['2048Ki', '2Mi'],
      ['2000', '2k'],
      ['1e3', '1k'],
      ['128Mi', '128Mi'],
      ['0', '0'],
    ];
    for (const [text, canonical] of cases) expect(formatQuantity(parseQuantity(text)), text).to.equal(canonical);
    expect(formatQuantity(parseQuantity('512Mi').add(parseQuantity('256Mi')))).to.equal('768Mi');
    expect(parseQuantity('1').compare(parseQuantity('1000m'))).to.equal(0);
    expect(parseQuantity('1Gi').compare(parseQuantity('1G'))).to.equal(1);
  });

  it('reads back what it prints, and refuses anything else with a RangeError only', function () {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10 ** 9 }), fc.constantFrom('', 'm', 'k', 'M', 'Ki', 'Mi', 'Gi'), (n, suffix) => {
        const quantity = parseQuantity(`${n}${suffix}`);
        expect(parseQuantity(formatQuantity(quantity)).compare(quantity)).to.equal(0);
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 20 }), (text) => {
        try {
          parseQuantity(text);
        } catch (error) {
          expect(error).to.be.instanceOf(RangeError);
        }
      }),
      { numRuns: 500 },
    );
  });
});
