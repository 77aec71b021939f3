#!/usr/bin/env bash
# `npm test`: lint, type checks (src with no runtime types, each adapter with its
# runtime's), the package build, then every test file in one node:test run —
# unit tests, the conformance suite on node/deno/bun/workerd, browser tests.
# System packages the tests need (chromium, nginx, openssl) are installed here when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export DENO_NO_UPDATE_CHECK=1 CI="${CI:-true}" WRANGLER_SEND_METRICS=false WRANGLER_SEND_ERROR_REPORTS=false \
  CLOUDFLARE_CF_FETCH_ENABLED=false
PATH="$PWD/node_modules/.bin:$PATH"

step() { printf '\n== %s\n' "$*"; }

if compgen -G "tests/browser/*.test.ts" >/dev/null; then
  step "system packages"
  bash scripts/ensure-system.sh
fi

step "lint and format (biome)"
biome check .

step "type checks"
tsc -p tsconfig.json          # src/: no runtime types at all
tsc -p tsconfig.node.json     # Node adapter, testing harness, examples, tests (type tests in tests/types), bench
tsc -p tsconfig.bun.json      # Bun adapter against bun-types
tsc -p tsconfig.cloudflare.json
deno check service/deno.ts adapters/deno.ts

step "package build (tsc: JavaScript and .d.ts into build/, what the examples import as \"edgewire\")"
npm run --silent build

step "tests: unit, conformance on every runtime, deploy (nginx, Worker bundles), browser"
shopt -s nullglob
files=(tests/unit/*.test.ts tests/conformance/*.test.ts tests/deploy/*.test.ts tests/browser/*.test.ts)
node --import tsx --test --test-concurrency=1 "${files[@]}"
