import { execFileSync } from 'node:child_process';
import { expect, test } from 'vitest';

test('the whole project type-checks in strict mode', () => {
  let output = '';
  try {
    execFileSync('npx', ['tsc', '--noEmit', '-p', 'tsconfig.json'], { encoding: 'utf8', stdio: 'pipe' });
  } catch (error) {
    output = String((error as { stdout?: string }).stdout ?? error);
  }
  expect(output).toBe('');
});
