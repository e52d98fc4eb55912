#!/bin/sh
# Runs a command with a Node >= 22 first on PATH (see node-env.sh).
set -e
BATON_ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$BATON_ROOT/scripts/node-env.sh"
exec "$@"
