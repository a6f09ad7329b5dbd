#!/usr/bin/env bash
# The whole test suite. Installs what the tests need from the system when it is missing,
# then runs vitest; its closing line is `N passed, N failed, N skipped`.
set -uo pipefail
cd "$(dirname "$0")/.."
bash test/support/ensure-system-deps.sh >&2 || { echo "could not install the system packages the tests need" >&2; exit 1; }
exec npx vitest run "$@"
