#!/usr/bin/env bash
# Idempotent set-up: Debian packages (when root), the .venv at the repo root, the package with
# its test extras. Safe to run again; does only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages minicloud needs on the host (see shared/DESIGN.md, "Host components").
DEBIAN_PACKAGES=(
  postgresql        # optional metadata store; the storage test suite runs against it
  python3-venv
  iproute2          # engine: network namespaces, veth pairs, addresses
  curl
  runc              # engine: runs containers from OCI bundles
  crun              # engine: preferred to runc when present (starts a container in ~1/3 of runc's time)
  busybox-static    # engine: the offline busybox image for tests
  mmdebstrap        # images bootstrap: base images built from Debian's packages
  skopeo            # engine tests: push images into a local registry
  docker-registry   # engine tests: a local registry to pull from
  docker.io         # registry tests: a real dockerd as the registry client (and a peer)
  podman            # engine benchmark: a peer (own --root/--runroot, runc)
  nginx             # S3 benchmark: static files, the floor for GETs (run by the bench, never as a service)
  wrk               # S3 benchmark: the 4 KiB phases' load generator (C), replaying pre-signed requests
  nftables          # engine: its own table isolates networks (the host's rules are never touched)
  rclone            # S3 client tests
  s3cmd             # S3 client tests
  chromium          # console e2e tests (driven by Playwright)
)

missing=()
if [ "$(id -u)" = 0 ] && command -v dpkg-query >/dev/null; then
  for pkg in "${DEBIAN_PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "install: apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # minicloud starts the daemons it needs itself (its own folders, loopback only): keep the packages'
    # init scripts from starting system-wide ones (dockerd would add a bridge and firewall rules).
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
      chmod +x /usr/sbin/policy-rc.d
      trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
elif [ "$(id -u)" != 0 ]; then
  echo "install: not root, skipping Debian packages (${DEBIAN_PACKAGES[*]})" >&2
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# Re-install only when the project's dependencies changed.
stamp=.venv/.minicloud-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test]'
  touch "$stamp"
fi
# Byte-compile minicloud's own modules (pip compiles only what it installs, and minicloud is
# installed editable): where PYTHONDONTWRITEBYTECODE is set, every process would otherwise compile
# each module from source at every start (~0.3 s of CPU per server, S3 worker and CLI, and a little
# heap each). Only changed sources are compiled again; a stale .pyc is never used.
.venv/bin/python -m compileall -q minicloud
