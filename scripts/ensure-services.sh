#!/usr/bin/env bash
# Start (or install, then start) the services the test suite talks to:
# PostgreSQL on 127.0.0.1:5432 with trust auth for local connections, and
# Debian's Chromium with its driver for the admin panel's browser test, and
# Debian's OpenSSH server, which the SSH host tests start on loopback ports.
set -euo pipefail

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    echo "Installing Chromium and chromedriver from Debian's packages..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium chromium-driver >/dev/null
fi
echo "Chromium is ready: $(chromium --version 2>/dev/null | head -n 1)."

bash "$(dirname "$0")/ensure-sshd.sh"

pg_ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "Installing PostgreSQL from Debian's packages..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
fi

if ! pg_ready; then
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    conf=/etc/postgresql/$version/main
    # Tests connect as postgres over loopback without a password.
    if ! grep -q "django-cd" "$conf/pg_hba.conf"; then
        sed -i '1i # django-cd tests: trust loopback\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\nlocal all all trust' "$conf/pg_hba.conf"
    fi
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
    for _ in $(seq 1 30); do pg_ready && break; sleep 1; done
fi
pg_ready || { echo "PostgreSQL did not start on 127.0.0.1:5432" >&2; exit 1; }
echo "PostgreSQL is ready on 127.0.0.1:5432."
