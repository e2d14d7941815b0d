#!/usr/bin/env bash
# Installs the real peers the tests drive (curl, openssl, nginx, stunnel, tcpdump, iproute2,
# Python grpcio, Go for the crypto/tls interop tests). Runs apt-get only when something is
# missing and we are root; otherwise the tests that need a missing tool skip with a printed reason.
set -u
need=()
command -v curl >/dev/null || need+=(curl)
command -v openssl >/dev/null || need+=(openssl)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v stunnel4 >/dev/null || command -v stunnel >/dev/null || need+=(stunnel4)
command -v tcpdump >/dev/null || [ -x /usr/bin/tcpdump ] || [ -x /usr/sbin/tcpdump ] || need+=(tcpdump)
command -v ip >/dev/null || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || need+=(iproute2)
/usr/bin/python3 -c 'import grpc' 2>/dev/null || need+=(python3-grpcio)
/usr/bin/python3 -c 'import yaml' 2>/dev/null || need+=(python3-yaml)
command -v go >/dev/null || [ -x /usr/lib/go/bin/go ] || need+=(golang-go)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "setup-system: not root, cannot install ${need[*]}; tests that need them will skip" >&2
  exit 0
fi
echo "setup-system: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || echo "setup-system: apt-get update failed" >&2
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
  || echo "setup-system: apt-get install ${need[*]} failed; tests that need them will skip" >&2
exit 0
