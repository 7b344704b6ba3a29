#!/usr/bin/env bash
# Refresh the committed front-end files from npm at the versions pinned in static/vendor/package.json.
# Only needed when a version changes; the built files are committed so the app needs no npm to run.
set -euo pipefail
cd "$(dirname "$0")/../static/vendor"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
copy() {  # copy PACKAGE FILE-IN-PACKAGE TARGET
  local version
  version=$(node -p "require('./package.json').dependencies['$1']")
  (cd "$work" && npm pack --silent "$1@$version" >/dev/null && mkdir -p "$1" && tar xzf ./*"$version".tgz -C "$1" && rm ./*.tgz)
  cp "$work/$1/package/$2" "$3"
  echo "$1@$version -> $3"
}
copy socket.io-client dist/socket.io.min.js socket.io.min.js
copy axe-core axe.min.js axe.min.js
copy chart.js dist/chart.umd.min.js chart.umd.min.js
