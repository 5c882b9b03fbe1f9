#!/usr/bin/env bash
# The client-compatibility suite (`make clients`): published clients at
# pinned versions, installed into target/clients, run against the real
# host-shim binary that `make` built. Needs python3 (venv, pip) and Node 20.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=$ROOT/target/clients

# Python clients in a venv of their own, reinstalled when the pins change.
if [ ! -x "$OUT/venv/bin/python" ] || ! cmp -s tests/clients/requirements.txt "$OUT/venv/requirements.txt"; then
    rm -rf "$OUT/venv"
    python3 -m venv "$OUT/venv"
    "$OUT/venv/bin/pip" install --quiet --disable-pip-version-check -r tests/clients/requirements.txt
    cp tests/clients/requirements.txt "$OUT/venv/requirements.txt"
fi

# JS clients from the lock file, kept out of the source tree.
mkdir -p "$OUT/js"
if ! cmp -s tests/clients/js/package-lock.json "$OUT/js/package-lock.json"; then
    cp tests/clients/js/package.json tests/clients/js/package-lock.json "$OUT/js/"
    (cd "$OUT/js" && npm ci --no-audit --no-fund --silent)
fi

status=0
"$OUT/venv/bin/python" -m pytest -p no:cacheprovider tests/clients/python -q || status=$?
# Node 20 has WebSocket behind a flag; @mattermost/client expects the global.
NODE_PATH="$OUT/js/node_modules" node --experimental-websocket --no-warnings \
    --test tests/clients/js/test/ || status=$?
exit $status
