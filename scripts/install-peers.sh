#!/usr/bin/env bash
# Installs the real peers the interop tests drive (sipp, baresip, chromium, kamailio) and the embedded
# server's mixer (janus, docs/mixer.md) when they are missing.
set -euo pipefail
missing=()
command -v sipp >/dev/null 2>&1 || missing+=(sip-tester)
command -v baresip >/dev/null 2>&1 || missing+=(baresip)
command -v janus >/dev/null 2>&1 || missing+=(janus)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# The proxy in front of several bridge nodes (docs/scale-out.md).
command -v kamailio >/dev/null 2>&1 || [ -x /usr/sbin/kamailio ] || missing+=(kamailio)
# The console's browser tests drive Debian's Chromium (Playwright never downloads a browser here).
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "The interop tests need: ${missing[*]}. Install them with:" >&2
    echo "    sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "installing ${missing[*]} with apt-get"
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
