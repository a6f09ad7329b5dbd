import fc from 'fast-check';
import { test } from 'vitest';
import { decoderProperties } from '../fuzz/decoders.fuzz.ts';

// The short run of `npm run fuzz`: hostile bytes give records with sane numbers or PromParseError,
// duplicate candidates stay bounded, and the guest CPU unit is told consistently.
test.each(Object.keys(decoderProperties) as (keyof typeof decoderProperties)[])(
  'the decoders hold their %s property on hostile input',
  (name) => {
    fc.assert(decoderProperties[name](), { numRuns: 300 });
  },
);
