#!/usr/bin/env bash
# Installs Janus, the embedded conference server's mixer (docs/mixer.md), when it is missing and we
# run as root. Without it the daemon still runs (signalling only) and says why, so this never fails
# `make run`: it prints the install command instead.
set -uo pipefail
command -v janus >/dev/null 2>&1 && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "Janus is not installed: meetings will have no audio. Install it with:" >&2
    echo "    sudo apt-get update && sudo apt-get install -y janus" >&2
    exit 0
fi
echo "installing janus with apt-get"
apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q janus \
    || echo "janus could not be installed: meetings will have no audio" >&2
exit 0
