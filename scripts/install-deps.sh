#!/usr/bin/env bash
# Installs what refwarden's build, tests and demo need on a Debian machine.
# Idempotent: installs only what is missing.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

need_apt=()
command -v docker-registry >/dev/null 2>&1 || [ -x /usr/bin/docker-registry ] || need_apt+=(docker-registry)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v sha256sum >/dev/null 2>&1 || need_apt+=(coreutils)
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "installing: ${need_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # policy-rc.d keeps the package from starting a system-wide registry service.
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  $SUDO rm -f /usr/sbin/policy-rc.d
fi
# Never leave a system registry running on :5000 (tests use their own, on free ports).
if command -v pgrep >/dev/null 2>&1 && pgrep -f '/etc/docker/registry/config.yml' >/dev/null 2>&1; then
  $SUDO pkill -f '/etc/docker/registry/config.yml' || true
fi

# Independent peers used by the tests: the ORAS Python SDK (pushes artifacts with a
# subject) and moto (serves the ECR API on 127.0.0.1).
pip_install() {
  python3 -m pip install --quiet --disable-pip-version-check "$@" 2>/dev/null \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "$@"
}
if command -v python3 >/dev/null 2>&1; then
  if ! python3 -m pip --version >/dev/null 2>&1; then
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
  fi
  python3 -c 'import oras' 2>/dev/null || pip_install oras
  python3 -c 'import moto.server' 2>/dev/null || pip_install 'moto[server]'
fi

if command -v rustup >/dev/null 2>&1; then
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
fi
