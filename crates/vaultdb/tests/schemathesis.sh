#!/usr/bin/env bash
# Runs schemathesis against `vaultdb serve` on an ephemeral loopback port.
#
#   tests/schemathesis.sh PATH/TO/vaultdb
#
# - schemathesis (pinned, with every dependency pinned in schemathesis-requirements.txt)
#   lives in a virtualenv in a cache folder outside the repository:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/vaultdb-tools/schemathesis-<version>. The first run
#   creates it (needs PyPI); later runs reuse it.
# - The server runs on 127.0.0.1:<free port> over the embedded default configuration
#   (three fs backends, 2-of-3) in a temporary directory, with a known admin token
#   (VAULTDB_TOKEN), and is stopped on exit.
# - Checks: all of schemathesis's but positive_data_acceptance. Among them: no 5xx
#   (not_a_server_error), bodies match their documented schemas (response_schema_conformance),
#   statuses and content types are documented, invalid input is rejected
#   (negative_data_rejection), authentication is enforced (ignored_auth), deleted records
#   are gone (use_after_free). positive_data_acceptance is left out because a schema-valid id
#   can still be invalid: JSON Schema's maxLength counts characters, VaultDB's limit is 255
#   bytes of UTF-8. Bounded by --max-examples per operation, and by a hard time limit.
#
# Exit status: schemathesis's (0 when every check passed); 3 without python3.
# ST_MAX_EXAMPLES (default 50) and ST_MAX_TIME (seconds, default 300) override the bounds.
set -euo pipefail

BIN=${1:?usage: schemathesis.sh PATH/TO/vaultdb}
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
HERE=$(cd "$(dirname "$0")" && pwd)
ST_VERSION=4.32.5
MAX_EXAMPLES=${ST_MAX_EXAMPLES:-50}
MAX_TIME=${ST_MAX_TIME:-300}
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/vaultdb-tools
VENV=$CACHE/schemathesis-$ST_VERSION

if ! command -v python3 >/dev/null 2>&1; then
    echo "schemathesis.sh: python3 not found" >&2
    exit 3
fi

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import schemathesis" 2>/dev/null; then
    echo "schemathesis.sh: installing schemathesis $ST_VERSION into $VENV" >&2
    mkdir -p "$CACHE"
    rm -rf "$VENV"
    # Build under a temporary name, then move into place: a concurrent run never sees a
    # half-built venv. (Its python finds its packages relative to itself, so the move is
    # safe; the console scripts are not used.)
    TMPVENV=$(mktemp -d "$CACHE/.schemathesis-XXXXXX")
    if python3 -m venv "$TMPVENV" 2>/dev/null; then
        "$TMPVENV/bin/python" -m pip install --quiet --disable-pip-version-check \
            -r "$HERE/schemathesis-requirements.txt"
    else
        # Debian's python3 without python3-venv: a venv without pip, filled by the
        # system's pip.
        rm -rf "$TMPVENV"
        python3 -m venv --without-pip "$TMPVENV"
        python3 -m pip --python "$TMPVENV/bin/python" install --quiet \
            --disable-pip-version-check -r "$HERE/schemathesis-requirements.txt"
    fi
    mv -T "$TMPVENV" "$VENV" 2>/dev/null || rm -rf "$TMPVENV"
fi

WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

TOKEN=vdb_schemathesis_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
: >"$WORK/serve.out"
cd "$WORK"
env -u VAULTDB_CONFIG -u VAULTDB_DATA_DIR -u VAULTDB_THRESHOLD -u VAULTDB_WRITE_QUORUM \
    -u VAULTDB_AUDIT_LOG \
    VAULTDB_LISTEN=127.0.0.1:0 VAULTDB_TOKEN="$TOKEN" RUST_LOG=warn \
    "$BIN" serve >"$WORK/serve.out" 2>"$WORK/serve.err" &
SERVER_PID=$!

BASE=
for _ in $(seq 1 300); do
    BASE=$(sed -n 's/^listening on \(http:\/\/127\.0\.0\.1:[0-9]*\)$/\1/p' "$WORK/serve.out")
    [ -n "$BASE" ] && break
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "schemathesis.sh: the server exited:" >&2
        cat "$WORK/serve.err" >&2
        exit 1
    fi
    sleep 0.1
done
if [ -z "$BASE" ]; then
    echo "schemathesis.sh: the server did not start" >&2
    exit 1
fi
echo "schemathesis.sh: schemathesis $ST_VERSION against $BASE/openapi.json" >&2

set +e
timeout --signal=TERM "$MAX_TIME" "$VENV/bin/python" -m schemathesis.cli run "$BASE/openapi.json" \
    --checks all \
    --exclude-checks positive_data_acceptance \
    --header "Authorization: Bearer $TOKEN" \
    --max-examples "$MAX_EXAMPLES" \
    --seed 20260501 \
    --workers 1 \
    --request-timeout 30
STATUS=$?
set -e
if [ "$STATUS" -ne 0 ]; then
    echo "schemathesis.sh: server stderr:" >&2
    tail -n 50 "$WORK/serve.err" >&2
fi
exit "$STATUS"
