#!/usr/bin/env bash
# Refreshes the technician CLI's translations (gettext catalogs, agent/locale/):
#   1. extracts every _("...") and M("...") (agent/i18n.py) from agent/ and display/
#      into agent/locale/tcs_agent.pot (not agent/central/: the console has its own
#      catalog, tcs_central),
#   2. merges new and changed messages into each language's .po (new ones untranslated;
#      no fuzzy guesses, which gettext would skip and a reviewer might miss),
#   3. compiles each .po into the .mo the agent reads at run time.
# Translate the empty msgstr entries of agent/locale/<lang>/LC_MESSAGES/tcs_agent.po
# between steps 2 and 3 (run the script again after translating). The .mo files are
# committed so that `pip install -e .` from a fresh clone needs no build step.
# Needs Babel (in the `test` extra): .venv/bin/pip install -e ".[test]"
set -euo pipefail
cd "$(dirname "$0")/.."
PYBABEL=${PYBABEL:-.venv/bin/pybabel}
"$PYBABEL" extract --no-location --sort-output --project=tcs-agent -k _ -k M \
  --ignore-dirs=".* ._ central" -o agent/locale/tcs_agent.pot agent display
for po in agent/locale/*/LC_MESSAGES/tcs_agent.po; do
  lang=$(basename "$(dirname "$(dirname "$po")")")
  "$PYBABEL" update --no-fuzzy-matching --width=100 -D tcs_agent -l "$lang" \
    -i agent/locale/tcs_agent.pot -d agent/locale
done
"$PYBABEL" compile --statistics -D tcs_agent -d agent/locale
