#!/usr/bin/env bash
# Installs the Debian packages the tests use, only when missing. Runs as root (as the tests do).
set -euo pipefail
need=()
command -v openssl >/dev/null || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
