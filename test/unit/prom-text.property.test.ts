import fc from 'fast-check';
import { expect, test } from 'vitest';
import { parsePromText } from '../../src/prom-text/index.ts';
import { promTextProperties, renderFamilies } from '../fuzz/prom-text.fuzz.ts';

// Moderate runs keep `npm test` fast; `npm run fuzz` runs the same properties ≥100,000 times.
const NUM_RUNS = 300;

test.each(Object.entries(promTextProperties))('%s', (_, property) => {
  fc.assert(property(), { numRuns: NUM_RUNS });
});

test('the test renderer follows the spec on a hand-checked example', () => {
  const rendered = renderFamilies(
    [
      {
        name: 'm',
        type: 'gauge',
        help: 'a\\b\nc',
        samples: [{ name: 'm', labels: [['k', 'q"\\\n']], value: -Infinity, timestampMs: -5 }],
      },
    ],
    { blank: ' ', trailingComma: true, emptyBraces: false, crlf: false },
  );
  expect(rendered).toBe('# HELP m a\\\\b\\nc\n# TYPE m gauge\nm{ k = "q\\"\\\\\\n",} -Inf -5\n');
  expect(parsePromText(rendered).families[0]!.samples[0]!.labels).toEqual({ k: 'q"\\\n' });
});
