import assert from 'node:assert/strict';
import { ratioInterval } from '../../bench/lib/stats.js';

// process-spread.ts reads "can these two be told apart?" off this interval.
describe('bench stats: ratioInterval (geometric mean and 95 % t-interval of ratios)', function () {
  it('matches a hand computation (8 generations, t = 2.365 at 7 degrees of freedom)', function () {
    // Python: exp(mean(log x)) and exp(mean ± 2.3646·sd/√8) of the logs.
    const interval = ratioInterval([0.982, 1.048, 0.972, 1.015, 1.052, 1.052, 0.99, 1.178])!;
    assert.ok(Math.abs(interval.mean - 1.0344) < 5e-4, `mean ${interval.mean}`);
    assert.ok(Math.abs(interval.low - 0.9825) < 5e-4, `low ${interval.low}`);
    assert.ok(Math.abs(interval.high - 1.089) < 5e-4, `high ${interval.high}`);
  });

  it('is a point when every ratio is the same, and narrows as samples agree', function () {
    const same = ratioInterval([1.1, 1.1, 1.1])!;
    assert.ok(Math.abs(same.low - 1.1) < 1e-12 && Math.abs(same.high - 1.1) < 1e-12);
    const wide = ratioInterval([0.9, 1.1])!;
    const narrow = ratioInterval([0.9, 1.1, 0.9, 1.1, 0.9, 1.1, 0.9, 1.1])!;
    assert.ok(narrow.high - narrow.low < wide.high - wide.low);
    assert.ok(wide.low < 1 && wide.high > 1);
  });

  it('needs two usable ratios (zero, negative and non-finite ones are left out)', function () {
    assert.equal(ratioInterval([]), undefined);
    assert.equal(ratioInterval([1.2]), undefined);
    assert.equal(ratioInterval([1.2, 0, -1, Number.NaN, Infinity]), undefined);
    assert.ok(ratioInterval([1.2, 0.8, Number.NaN]) !== undefined);
  });
});
