#!/usr/bin/env bash
# Install Debian's OpenSSH server when it is missing. The tests and `make
# demo-fleet` start their own sshd processes on loopback ports: no system
# service is enabled or started.
set -euo pipefail

if [ ! -x /usr/sbin/sshd ]; then
    echo "Installing the OpenSSH server from Debian's packages..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq openssh-server >/dev/null
fi
echo "sshd is ready: $(/usr/sbin/sshd -V 2>&1 | head -n 1)."
