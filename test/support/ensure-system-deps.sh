#!/usr/bin/env bash
# Installs the Debian packages the tests use, only when missing. Runs as root (as the tests do).
# - openssl: certificate checks in the TLS tests
# - prometheus: promtool (metrics lint, rule tests) and a real Prometheus for the end-to-end tests
# - chromium: the headless browser that loads the landing page
set -euo pipefail
need=()
command -v openssl >/dev/null || need+=(openssl)
command -v promtool >/dev/null || need+=(prometheus)
command -v chromium >/dev/null || need+=(chromium)
# kubectl renders the kustomize manifests (test/unit/manifests.test.ts): the `kubectl` package when
# an apt source offers it (Kubernetes or Google Cloud repository), else Debian's kubernetes-client,
# whose old bundled kustomize may be too old for deploy/kubernetes (the test then says so).
command -v kubectl >/dev/null || need+=("$(apt-cache show kubectl >/dev/null 2>&1 && echo kubectl || echo kubernetes-client)")
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  echo "installing test dependencies: ${need[*]}" >&2
  apt-get update -qq
  # The package's own service is not wanted: tests start Prometheus themselves.
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
  fi
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi
