#!/bin/sh
# Installs the Debian packages the tests and benchmarks talk to (swaks: SMTP client;
# postfix: ships smtp-source/smtp-sink; chromium for Playwright; redis-server for the vault's
# Redis backend test; Mail::DKIM and OpenDKIM to verify signatures; haproxy in front). Non-interactive; postfix neither prompts nor takes
# port 25. Does nothing when everything is already there.
set -eu
missing=""
command -v swaks >/dev/null 2>&1 || missing="$missing swaks"
perl -MNet::SSLeay -e1 >/dev/null 2>&1 || missing="$missing libnet-ssleay-perl libio-socket-ssl-perl"
perl -MAuthen::SASL -e1 >/dev/null 2>&1 || missing="$missing libauthen-sasl-perl"
[ -x /usr/sbin/smtp-source ] || missing="$missing postfix"
# chromium: the browser tests drive it with Playwright (no browser download)
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
# Mail::DKIM: the independent DKIM verifier the tests check every signature with
perl -MMail::DKIM::Verifier -MNet::DNS -MCrypt::PK::Ed25519 -e1 >/dev/null 2>&1 || missing="$missing libmail-dkim-perl libnet-dns-perl libcryptx-perl"
# OpenDKIM's test mode: a third verifier, the one of the three that knows Ed25519 (RFC 8463)
command -v opendkim >/dev/null 2>&1 || missing="$missing opendkim"
# node: runs the webhook verifier docs/webhooks.md gives for Node.js
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
# wrk: the HTTP load generator of the pixel benchmark
command -v wrk >/dev/null 2>&1 || missing="$missing wrk"
# haproxy: the load balancer in front of the gateway (PROXY protocol, several nodes)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing="$missing haproxy"
# docker-compose: checks deploy/compose (config only; no Docker daemon is used)
command -v docker-compose >/dev/null 2>&1 || missing="$missing docker-compose"
# dovecot-imapd: the IMAP server the inbox reader is tested against (XOAUTH2 via its oauth2
# passdb, checked against the tests' local token server)
[ -x /usr/sbin/dovecot ] || missing="$missing dovecot-imapd"
# CPython's email test corpus: the differential tests run the fast paths over its messages
[ -d /usr/lib/python3.11/test/test_email/data ] || missing="$missing libpython3.11-testsuite"
# pdftoppm (poppler-utils): the evidence pack's test renders its PDF to pictures
command -v pdftoppm >/dev/null 2>&1 || missing="$missing poppler-utils"
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
# Debian starts postfix after install on some systems; the tests need no local MTA.
$SUDO postfix stop >/dev/null 2>&1 || true
# Nor the system Dovecot: the tests start their own on a loopback port.
$SUDO systemctl disable --now dovecot >/dev/null 2>&1 || $SUDO service dovecot stop >/dev/null 2>&1 || true
