/**
 * `npm run fuzz [-- runs]`: long property runs of the parser and the decoders (default 100,000
 * cases each), then the parser's complexity on adversarial inputs (complexity.fuzz.ts).
 */
import { fuzzComplexity } from './complexity.fuzz.ts';
import { fuzzDecoders } from './decoders.fuzz.ts';
import { fuzzPromText } from './prom-text.fuzz.ts';

const runs = Number(process.argv[2] ?? 100_000);
if (!Number.isInteger(runs) || runs <= 0) {
  process.stderr.write(`usage: npm run fuzz -- [cases per property], not "${process.argv[2]}"\n`);
  process.exit(2);
}
const started = performance.now();
fuzzPromText(runs);
fuzzDecoders(runs);
fuzzComplexity(runs);
process.stdout.write(`fuzz: all properties held for ${runs} cases each in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
