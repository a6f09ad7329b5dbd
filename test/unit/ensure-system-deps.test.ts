/**
 * test/support/ensure-system-deps.sh against a stub apt-get on a PATH where none of the tools the
 * tests need exists, so the script always installs; the real apt and /usr/sbin are never touched.
 */

import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, test } from 'vitest';

const SCRIPT = new URL('../support/ensure-system-deps.sh', import.meta.url).pathname;
const TOOLS = ['mktemp', 'rm', 'cat', 'grep', 'sleep', 'chmod'];

/** apt-get: logs its arguments; `update` reports the lists lock held the first N times; `install` may fail. */
const STUB_APT_GET = `#!/bin/bash
echo "$*" >> "$STUB_DIR/calls"
case " $* " in
  *" update "*)
    n=$(cat "$STUB_DIR/locked" 2>/dev/null || echo 0)
    if [ "$n" -gt 0 ]; then
      echo $((n - 1)) > "$STUB_DIR/locked"
      echo "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 4242 (apt-get)" >&2
      exit 100
    fi ;;
  *" install "*)
    if [ -n "\${STUB_INSTALL_ERROR:-}" ]; then echo "E: $STUB_INSTALL_ERROR" >&2; exit 100; fi ;;
esac
exit 0
`;

let dir: string;
let policy: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kmb-deps-'));
  policy = join(dir, 'policy-rc.d');
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  for (const tool of TOOLS) symlinkSync(`/usr/bin/${tool}`, join(bin, tool));
  writeFileSync(join(bin, 'apt-get'), STUB_APT_GET);
  writeFileSync(join(bin, 'apt-cache'), '#!/bin/bash\nexit 100\n');
  chmodSync(join(bin, 'apt-get'), 0o755);
  chmodSync(join(bin, 'apt-cache'), 0o755);
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

function run(env: Record<string, string> = {}): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      '/bin/bash',
      [SCRIPT],
      { env: { PATH: join(dir, 'bin'), STUB_DIR: dir, KMB_POLICY_RC_D: policy, KMB_APT_RETRY_SECONDS: '0', ...env } },
      (error, _stdout, stderr) => resolve({ code: error === null ? 0 : Number(error.code), stderr }),
    );
  });
}

const calls = () => readFileSync(join(dir, 'calls'), 'utf8').trim().split('\n');

test('installs what is missing, waiting for the dpkg lock, and removes the policy-rc.d it made', async () => {
  const result = await run();
  expect(result).toMatchObject({ code: 0 });
  expect(calls()).toEqual([
    '-o DPkg::Lock::Timeout=600 update -qq',
    '-o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends openssl prometheus chromium kubernetes-client',
  ]);
  expect(existsSync(policy)).toBe(false);
});

test('a policy-rc.d that already existed is kept, and the script still succeeds', async () => {
  writeFileSync(policy, '#!/bin/sh\nexit 101\n');
  expect((await run()).code).toBe(0);
  expect(existsSync(policy)).toBe(true);
});

test('apt-get update waits while another process holds the lists lock', async () => {
  writeFileSync(join(dir, 'locked'), '2');
  const result = await run();
  expect(result.code).toBe(0);
  expect(calls().filter((call) => call.includes(' update '))).toHaveLength(3);
  expect(result.stderr).toContain('waiting for another process to release the apt lists lock');
});

test("a failed install exits non-zero with apt-get's own message, and removes the policy-rc.d it made", async () => {
  const result = await run({ STUB_INSTALL_ERROR: 'Unable to locate package chromium' });
  expect(result.code).not.toBe(0);
  expect(result.stderr).toContain('apt-get install openssl prometheus chromium kubernetes-client failed; apt-get said:');
  expect(result.stderr).toContain('E: Unable to locate package chromium');
  expect(existsSync(policy)).toBe(false);
});

test("a lock that is never released ends the wait with apt-get's message", async () => {
  writeFileSync(join(dir, 'locked'), '1000');
  const result = await run({ KMB_APT_LOCK_WAIT: '0' });
  expect(result.code).not.toBe(0);
  expect(result.stderr).toContain('E: Could not get lock /var/lib/apt/lists/lock');
});
