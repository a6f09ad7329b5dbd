#!/usr/bin/env bash
# Installs the Debian packages the tests use, only when missing. Runs as root (as the tests do).
# - openssl: certificate checks in the TLS tests
# - prometheus: promtool (metrics lint, rule tests) and a real Prometheus for the end-to-end tests
# - chromium: the headless browser that loads the landing page
# apt waits for another process's lock instead of failing, and its output is shown when it fails.
set -euo pipefail
# Overridable so that test/unit/ensure-system-deps.test.ts can run this against a stub apt.
policy_rc_d=${KMB_POLICY_RC_D:-/usr/sbin/policy-rc.d}
lock_wait=${KMB_APT_LOCK_WAIT:-600}
retry_every=${KMB_APT_RETRY_SECONDS:-5}

need=()
command -v openssl >/dev/null || need+=(openssl)
command -v promtool >/dev/null || need+=(prometheus)
command -v chromium >/dev/null || need+=(chromium)
# kubectl renders the kustomize manifests (test/unit/manifests.test.ts): the `kubectl` package when
# an apt source offers it (Kubernetes or Google Cloud repository), else Debian's kubernetes-client,
# whose old bundled kustomize may be too old for deploy/kubernetes (the test then says so).
command -v kubectl >/dev/null || need+=("$(apt-cache show kubectl >/dev/null 2>&1 && echo kubectl || echo kubernetes-client)")
if [ ${#need[@]} -eq 0 ]; then exit 0; fi

apt_log=$(mktemp)
made_policy=0
cleanup() {
  rm -f "$apt_log"
  if [ "$made_policy" = 1 ]; then rm -f "$policy_rc_d"; fi
}
trap cleanup EXIT

# Runs apt-get quietly, waiting up to $lock_wait s for the dpkg lock; keeps its output in $apt_log.
apt_get() {
  apt-get -o DPkg::Lock::Timeout="$lock_wait" "$@" >"$apt_log" 2>&1
}

fail() {
  echo "ensure-system-deps: $1 failed; apt-get said:" >&2
  cat "$apt_log" >&2
  exit 1
}

# apt-get update takes the package lists lock, which DPkg::Lock::Timeout does not cover on every
# apt release: retry while another process holds it, up to the same wait.
update_lists() {
  local deadline=$((SECONDS + lock_wait))
  until apt_get update -qq; do
    if ! grep -q '/var/lib/apt/lists/lock' "$apt_log" || [ "$SECONDS" -ge "$deadline" ]; then fail 'apt-get update'; fi
    echo "ensure-system-deps: waiting for another process to release the apt lists lock" >&2
    sleep "$retry_every"
  done
}

export DEBIAN_FRONTEND=noninteractive
echo "installing test dependencies: ${need[*]}" >&2
update_lists
# The package's own service is not wanted: tests start Prometheus themselves.
if [ ! -e "$policy_rc_d" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy_rc_d"
  chmod +x "$policy_rc_d"
  made_policy=1
fi
apt_get install -y -qq --no-install-recommends "${need[@]}" || fail "apt-get install ${need[*]}"
