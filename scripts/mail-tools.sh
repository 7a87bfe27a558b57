#!/usr/bin/env bash
# What the e-mail tests send through: Debian's msmtp (a real sendmail interface) and python3-aiosmtpd (a real SMTP
# server), installed when missing. Safe to run from several tests at once.
set -euo pipefail
if command -v msmtp >/dev/null && /usr/bin/python3 -c "import aiosmtpd" 2>/dev/null; then exit 0; fi
exec 9>/tmp/latchkey-mail-tools.lock
flock 9
if command -v msmtp >/dev/null && /usr/bin/python3 -c "import aiosmtpd" 2>/dev/null; then exit 0; fi
echo "Installing msmtp and python3-aiosmtpd from Debian's packages…" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq msmtp python3-aiosmtpd >&2
