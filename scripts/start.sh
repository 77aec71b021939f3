#!/bin/sh
# `npm start` runs the Node dev server; `bun run start` runs the same app on Bun
# (both read package.json "start", so the package manager decides the runtime).
# Bun sets npm_execpath to its own binary but keeps an inherited
# npm_config_user_agent, so the exec path is asked first.
set -e
cd "$(dirname "$0")/.."
case "${npm_execpath:-}" in
  *bun*) exec bun service/bun.ts ;;
esac
case "${npm_config_user_agent:-}" in
  bun/*) exec bun service/bun.ts ;;
  *) exec node --import tsx service/node.ts ;;
esac
