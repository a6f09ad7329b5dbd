import { describe, expect, test } from 'vitest';
import { parseQuantity, quantityToBytes, quantityToCores } from '../../src/translate/quantity.ts';

// Expected values derived by hand from the suffix tables in k8s.io/apimachinery resource/quantity.go.
describe('quantityToCores', () => {
  test.each([
    ['250m', 0.25],
    ['100m', 0.1],
    ['1500m', 1.5],
    ['1', 1],
    ['0', 0],
    ['0.5', 0.5],
    ['.5', 0.5],
    ['2.', 2],
    ['+1', 1],
    ['-1', -1],
    ['1e3', 1000],
    ['1E3', 1000],
    ['1e-3', 0.001],
    ['1k', 1000],
    ['5u', 0.000005],
    ['1n', 1e-9],
    ['1Ki', 1024],
  ])('%s → %d cores', (text, cores) => {
    expect(quantityToCores(text)).toBe(cores);
  });
});

describe('quantityToBytes', () => {
  test.each([
    ['320Mi', 335_544_320], // 320 × 1 048 576
    ['130Mi', 136_314_880], // 130 × 1 048 576
    ['1Gi', 1_073_741_824],
    ['1.5Gi', 1_610_612_736], // 3 × 536 870 912
    ['64Ki', 65_536],
    ['1Ei', 1_152_921_504_606_846_976], // 2^60
    ['500M', 500_000_000],
    ['1k', 1_000],
    ['1.1k', 1_100], // exact, not 1100.0000000000002 then rounded up to 1101
    ['1e3', 1_000],
    ['12E', 12_000_000_000_000_000_000], // E alone is exa, 12 × 10^18
    ['100m', 1], // 0.1 byte rounds up, as Quantity.Value() does
    ['1.5', 2],
    ['-0.5', 0], // rounding up towards +∞
    ['2Gi', 2_147_483_648],
  ])('%s → %d bytes', (text, bytes) => {
    expect(quantityToBytes(text)).toBe(bytes);
  });
});

describe('invalid quantities', () => {
  test.each(['', '.', 'Mi', 'abc', '1.2.3', '1 Mi', ' 1', '1MB', '1K', '1mi', '1e', '--1', '1Ki ', '0x10', '1e999'])(
    '%j is rejected',
    (text) => {
      expect(parseQuantity(text)).toBeUndefined();
      expect(quantityToBytes(text)).toBeUndefined();
    },
  );
});
