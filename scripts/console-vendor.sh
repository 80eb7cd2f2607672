#!/usr/bin/env bash
# Rebuilds the web console's two vendored libraries from their npm packages (pinned in
# tests/browser/package.json). The output is committed, so an operator never runs this:
# run it only to move to a new version of age-encryption or tus-js-client.
#   gateway/console/vendor/age.js      age-encryption as one ES module (esbuild)
#   gateway/console/vendor/tus.min.js  tus-js-client's own browser build, as published
set -euo pipefail
cd "$(dirname "$0")/.."
(cd tests/browser && npm ci --silent --no-audit --no-fund)
out=gateway/console/vendor
tests/browser/node_modules/.bin/esbuild tests/browser/node_modules/age-encryption/dist/index.js \
  --bundle --format=esm --minify --legal-comments=eof --target=es2022 \
  --outfile="$out/age.js"
cp tests/browser/node_modules/tus-js-client/dist/tus.min.js "$out/tus.min.js"
echo "console-vendor: wrote $out/age.js and $out/tus.min.js"
