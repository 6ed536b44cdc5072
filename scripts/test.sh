#!/usr/bin/env bash
# The README's test command (`npm test`): install system pieces if missing, build, type-check,
# run every suite. Ends with `N passed, N failed`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-system.sh
[[ -d node_modules ]] || npm install --no-audit --no-fund
node scripts/build.mjs
node node_modules/typescript/bin/tsc --noEmit -p tsconfig.json
node scripts/run-tests.mjs "$@"
