/** `npm run docs`: writes docs/metrics.md from the metric table. */

import { writeFileSync } from 'node:fs';
import { renderMetricsDoc } from './metrics-doc.ts';

const target = new URL('../docs/metrics.md', import.meta.url);
writeFileSync(target, renderMetricsDoc());
process.stdout.write(`wrote ${target.pathname}\n`);
