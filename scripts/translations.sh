#!/usr/bin/env bash
# Extract the interface's strings, merge them into the Dutch catalogue and compile it.
set -euo pipefail
cd "$(dirname "$0")/.."
pybabel=.venv/bin/pybabel
catalogue=crisis/translations
$pybabel extract -F babel.cfg -k _l -k lazy_gettext -o "$catalogue/messages.pot" .
if [ -f "$catalogue/nl/LC_MESSAGES/messages.po" ]; then
  $pybabel update -i "$catalogue/messages.pot" -d "$catalogue" -l nl --no-fuzzy-matching
else
  $pybabel init -i "$catalogue/messages.pot" -d "$catalogue" -l nl
fi
$pybabel compile -d "$catalogue" --statistics
