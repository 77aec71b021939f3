#!/usr/bin/env bash
# The system packages the tests drive, installed from Debian's apt when missing:
# chromium (browser tests, through playwright-core: `npx playwright install` cannot
# download here), nginx (deploy/nginx.conf is run in front of a fleet), openssl
# (certificates for the wss:// and nginx TLS tests).
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v openssl >/dev/null || missing+=(openssl)
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
echo "installing ${missing[*]} (apt-get)…"
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
# Debian starts the nginx service on install; the tests run their own in the foreground.
if [[ " ${missing[*]} " == *" nginx "* ]]; then $SUDO service nginx stop >/dev/null 2>&1 || true; fi
/usr/bin/chromium --version
/usr/sbin/nginx -v
