import { spawnSync } from 'node:child_process';
import { expect, test } from 'vitest';

// `npm run lint`: the formatter's check (prettier, .prettierrc.json) and the strict type check.
test('npm run lint passes: the tree is formatted and type-checks in strict mode', () => {
  const run = spawnSync('npm', ['run', '--silent', 'lint'], { encoding: 'utf8' });
  expect(`${run.stdout}${run.stderr}`.trim()).toBe('');
  expect(run.status).toBe(0);
});
