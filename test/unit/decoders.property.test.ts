import fc from 'fast-check';
import { test } from 'vitest';
import { decoderProperties } from '../fuzz/decoders.fuzz.ts';

// The short run of `npm run fuzz`: hostile bytes give records with sane numbers or PromParseError.
test.each(Object.keys(decoderProperties) as (keyof typeof decoderProperties)[])('the %s decoder survives hostile bytes', (name) => {
  fc.assert(decoderProperties[name](), { numRuns: 300 });
});
