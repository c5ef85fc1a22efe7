#!/usr/bin/env bash
# Installs the Debian packages migrator's sandbox and benchmarks need, when they are missing.
# MariaDB runs the source instances; mydumper/myloader are the benchmark peers; openssl makes
# the certificates of the Dask TLS test.
set -euo pipefail
need=()
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
command -v mariadb >/dev/null 2>&1 || need+=(mariadb-client)
command -v mydumper >/dev/null 2>&1 || need+=(mydumper)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "migrator needs: ${need[*]}. Install them with: sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
echo "installing ${need[*]} (apt-get)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# The package may start a system server; the sandbox runs its own instances instead.
if command -v service >/dev/null 2>&1; then service mariadb stop >/dev/null 2>&1 || true; fi
