#!/usr/bin/env bash
# Real, unmodified clients against the mock-entra binary over https, no proxy, no URL
# rewriting: MSAL Python, azure-identity and PyJWT (pinned in python/requirements.txt, in
# a venv under the build folder) and @azure/msal-node (pinned in node/package-lock.json).
#
# Usage: tests/clients/run.sh [path/to/mock-entra]
#   default binary: ${CARGO_TARGET_DIR:-target}/debug/mock-entra
#   (cargo build --locked -p mock-entra)
# Any failing check fails the run with a non-zero status.
#        tests/clients/run.sh --prepare
#   only installs the clients (a venv and node_modules under the build folder), so that
#   .ci/run can do it while cargo compiles; a later run reuses them.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
work="$target/clients"
venv="$target/clients-venv"
mkdir -p "$work"

prepare() {
    echo "--- python clients: venv $venv"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/python/requirements.txt"

    echo "--- node clients: npm ci (unless node_modules follows this package-lock.json)"
    mkdir -p "$work/node"
    if [ ! -d "$work/node/node_modules" ] ||
        ! cmp -s "$here/node/package-lock.json" "$work/node/package-lock.json"; then
        rm -rf "$work/node" && mkdir -p "$work/node"
        cp "$here/node/package.json" "$here/node/package-lock.json" "$work/node/"
        (cd "$work/node" && npm ci --silent --no-audit --no-fund)
    fi
    cp "$here/node/clients.test.mjs" "$work/node/"
}

if [ "${1:-}" = --prepare ]; then
    prepare
    exit 0
fi
bin="${1:-$target/debug/mock-entra}"
[ -x "$bin" ] || { echo "no mock-entra binary at $bin" >&2; exit 1; }
prepare

echo "--- mock-entra --tls --config tests/clients/scenario.json"
rm -f "$work/ready.json" "$work/ca.pem"
"$bin" --tls --ca-file "$work/ca.pem" --config "$here/scenario.json" >"$work/ready.json" 2>"$work/mock.log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
    [ -s "$work/ready.json" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
if [ ! -s "$work/ready.json" ]; then
    echo "mock-entra did not print its ready line:" >&2
    cat "$work/mock.log" >&2
    exit 1
fi
[ "$(wc -l <"$work/ready.json")" = 1 ] || { echo "the ready line is not one line" >&2; exit 1; }

export REQUESTS_CA_BUNDLE="$work/ca.pem" SSL_CERT_FILE="$work/ca.pem" NODE_EXTRA_CA_CERTS="$work/ca.pem"
export READY_FILE="$work/ready.json"
status=0
"$venv/bin/python" "$here/python/test_clients.py" "$work/ready.json" || status=1
(cd "$work/node" && node --test) || status=1

kill -TERM "$pid"
if ! wait "$pid"; then
    echo "mock-entra did not exit 0 on SIGTERM" >&2
    status=1
fi
trap - EXIT
if [ "$status" != 0 ]; then
    echo "--- mock-entra's log" >&2
    tail -50 "$work/mock.log" >&2
    echo "real clients against mock-entra: FAILED" >&2
fi
exit "$status"
