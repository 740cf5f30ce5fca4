#!/usr/bin/env bash
# Debian packages the test suite needs (PostgreSQL, Prometheus' promtool), installed when missing.
# Run as root on a fresh machine of the project's kind; elsewhere, tests that need a package skip
# with a reason that names it.
set -euo pipefail
need=()
command -v java >/dev/null || need+=(openjdk-17-jre-headless)
command -v mvn  >/dev/null || need+=(maven)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
# promtool checks ops/prometheus; the prometheus binary runs the live dashboard check. (Like
# postgresql, on a machine with systemd the package also enables its own service on :9090.)
command -v promtool >/dev/null && command -v prometheus >/dev/null || need+=(prometheus)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "system-deps: missing ${need[*]} and not root; install them with apt-get" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
