#!/usr/bin/env bash
# Installs what vless-tun needs on Debian 12 (as root) and unpacks the
# Debian source packages of mbedTLS 3.6 and lwIP 2.2.1 into .deps/.
# Idempotent: does nothing when everything is already there.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
deps="$root/.deps"
src_suite=trixie            # Debian's release after 12: mbedTLS 3.6 LTS, lwIP 2.2.1
mbedtls_want=3.6
lwip_want=2.2.1

pkgs=(build-essential cmake pkg-config ninja-build libuv1-dev libtomlplusplus-dev libssl-dev libmaxminddb-dev
      libgtest-dev googletest clang libclang-rt-14-dev llvm dpkg-dev
      v2ray iperf3 socat curl openssl iproute2 python3 procps patch
      dnsmasq-base nftables ca-certificates iputils-ping traceroute
      openjdk-17-jdk-headless nginx-core systemd)

say() { printf 'setup: %s\n' "$*"; }

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

have_src() {
  compgen -G "$deps/mbedtls-${mbedtls_want}*/library/ssl_tls.c" >/dev/null &&
    compgen -G "$deps/lwip-${lwip_want}*/src/core/tcp.c" >/dev/null
}

if [ ${#missing[@]} -eq 0 ] && have_src; then
  exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "setup: must run as root to install: ${missing[*]:-sources}" >&2; exit 1; }

# A deb-src entry for the next release, on the same mirror this machine's own
# Debian apt source uses (so that nothing here names a mirror).
src_list=/etc/apt/sources.list.d/vless-tun-src.sources
updated=0
if ! have_src && [ ! -f "$src_list" ]; then
  uri=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1=="deb" && $0 !~ /security/ {for(i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' /etc/apt/sources.list)
  fi
  [ -n "$uri" ] || { echo "setup: cannot find this machine's Debian mirror in /etc/apt" >&2; exit 1; }
  say "adding deb-src $src_suite from this machine's mirror"
  cat > "$src_list" <<SRC
Types: deb-src
URIs: $uri
Suites: $src_suite
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi

if [ ${#missing[@]} -gt 0 ] || ! have_src; then
  say "apt-get update"
  apt-get update -qq
  updated=1
fi
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  # Services a package would start on install (nginx on port 80) stay
  # down: the tests start their own, inside the namespaces they make.
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && own_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ $own_policy -eq 0 ] || rm -f "$policy"
  if [[ " ${missing[*]} " == *" nginx-core "* ]] && command -v systemctl >/dev/null; then
    systemctl disable --now nginx >/dev/null 2>&1 || true
  fi
fi

if ! have_src; then
  [ $updated -eq 1 ] || apt-get update -qq
  mkdir -p "$deps"
  cd "$deps"
  say "fetching source packages mbedtls/$src_suite lwip/$src_suite"
  apt-get source -qq "mbedtls/$src_suite" "lwip/$src_suite" >/dev/null 2>&1 ||
    { echo "setup: apt-get source mbedtls/$src_suite lwip/$src_suite failed" >&2; exit 1; }
  rm -f ./*.dsc ./*.tar.* 
  have_src || { echo "setup: sources unpacked but not the expected versions (mbedTLS $mbedtls_want, lwIP $lwip_want): $(ls "$deps")" >&2; exit 1; }
fi
say "ready: $(ls -d "$deps"/mbedtls-* "$deps"/lwip-* | xargs -n1 basename | tr '\n' ' ')"
