#!/usr/bin/env bash
# Installs what the test suite talks to, once: the OpenSSH client, curl, the age CLI
# (interop), promtool (metrics format), qpdf (PDF test files), rclone (an SFTP client),
# gcab and cabextract (CAB archives),
# nats-server (JetStream, for event hand-off), HAProxy, PostgreSQL and moto (S3) for scale-out,
# chromium with puppeteer-core and axe-core (the web console), pyrage (interop) and
# pydicom (DICOM test files and the reference for DICOM metadata). A second run only checks.
set -euo pipefail

need_apt=()
command -v sftp >/dev/null || need_apt+=(openssh-client)
command -v curl >/dev/null || need_apt+=(curl)
command -v age >/dev/null || need_apt+=(age)
command -v promtool >/dev/null || need_apt+=(prometheus)
command -v qpdf >/dev/null || need_apt+=(qpdf)
command -v rclone >/dev/null || need_apt+=(rclone)
# CAB archives (the review channel's DICOM packaging): made with gcab, checked with cabextract.
command -v gcab >/dev/null || need_apt+=(gcab)
command -v cabextract >/dev/null || need_apt+=(cabextract)
# Hand-off: a real NATS server with JetStream (started by the tests themselves).
command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || need_apt+=(nats-server)
# Scale-out: the load balancer in front of several gateways (PROXY protocol v2).
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || need_apt+=(haproxy)
# Scale-out: PostgreSQL (throwaway clusters per test, run as the `postgres` user).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
# The web console's browser tests: Debian's chromium (driven by puppeteer-core) and a
# font with Traditional Chinese glyphs for its screenshots.
command -v chromium >/dev/null || need_apt+=(chromium)
[ -d /usr/share/fonts/opentype/noto ] || need_apt+=(fonts-noto-cjk)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "test-setup: apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# Scale-out: an S3-compatible server (moto in server mode) for the S3 object store.
if ! command -v moto_server >/dev/null || ! python3 -c 'import flask_cors' 2>/dev/null; then
  echo "test-setup: pip install moto[server]"
  python3 -m pip install -q 'moto[server]==5.2.1'
fi

if ! python3 -c 'import pyrage' 2>/dev/null; then
  echo "test-setup: pip install pyrage"
  python3 -m pip install -q 'pyrage==1.4.0'
fi

if ! python3 -c 'import pydicom' 2>/dev/null; then
  echo "test-setup: pip install pydicom"
  python3 -m pip install -q 'pydicom==3.0.2'
fi
# pydicom-data (module `data_store`): the real-world files pydicom's own tests download
# (the DICOM corpus test).
if ! python3 -c 'import data_store' 2>/dev/null; then
  echo "test-setup: pip install pydicom-data"
  python3 -m pip install -q 'pydicom-data==1.0.0'
fi

# SFTP interop: paramiko (a client nobody here wrote) and ssh-audit (algorithm audit).
if ! python3 -c 'import paramiko' 2>/dev/null; then
  echo "test-setup: pip install paramiko"
  python3 -m pip install -q 'paramiko>=3.4'
fi
if ! python3 -c 'import ssh_audit' 2>/dev/null; then
  echo "test-setup: pip install ssh-audit"
  python3 -m pip install -q 'ssh-audit>=3.1'
fi

# tus interop: tuspy (PyPI) and tus-js-client (npm, run under the machine's Node.js).
if ! python3 -c 'import tusclient' 2>/dev/null; then
  echo "test-setup: pip install tuspy"
  python3 -m pip install -q 'tuspy==1.1.0'
fi
if [ ! -d tests/interop/js/node_modules/tus-js-client ]; then
  echo "test-setup: npm ci (tests/interop/js)"
  (cd tests/interop/js && npm ci --silent --no-audit --no-fund)
fi

# The console's browser tests: puppeteer-core and axe-core (and the sources of the
# console's vendored bundles: age-encryption, tus-js-client, esbuild).
if [ ! -d tests/browser/node_modules/puppeteer-core ] || [ ! -d tests/browser/node_modules/axe-core ]; then
  echo "test-setup: npm ci (tests/browser)"
  (cd tests/browser && npm ci --silent --no-audit --no-fund)
fi

# DICOMweb interop: dicomweb-client (PyPI), the client the DICOMweb tests drive.
if ! python3 -c 'import dicomweb_client' 2>/dev/null; then
  echo "test-setup: pip install dicomweb-client"
  python3 -m pip install -q 'dicomweb-client==0.59.3'
fi

# HTTPS conformance: schemathesis (fuzzes the OpenAPI document) and sslyze (TLS scan).
if ! command -v schemathesis >/dev/null; then
  echo "test-setup: pip install schemathesis"
  python3 -m pip install -q 'schemathesis==4.32.5'
fi
if ! python3 -c 'import sslyze' 2>/dev/null; then
  echo "test-setup: pip install sslyze"
  python3 -m pip install -q 'sslyze==6.3.1'
fi
