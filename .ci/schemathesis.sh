#!/usr/bin/env bash
# Property-based conformance of the running vault to its own OpenAPI document.
#
# Why: crates/http/openapi.json claims to describe the server exactly (required fields, enums,
# bounds, closed objects, every error status). The e2e test `openapi_conformance` checks the
# answers of the main flows; schemathesis here generates thousands of requests from the document
# (valid ones that must be accepted, invalid ones that must be refused) and checks every answer
# against it. Any mismatch, or any 5xx, fails CI.
#
# It starts the vault binary on a free loopback port with a throwaway data directory, mints an
# admin token (`tokenvault admin-token`), creates an app and an API key, then runs schemathesis
# twice: the admin operations with the admin token, the app operations with the API key. Every
# process it starts is stopped on exit. Bounded: a fixed number of examples per operation.
#
# Environment: SCHEMATHESIS_MAX_EXAMPLES (default 100: about 10,000 cases, 2 minutes on 2 cores), TOKENVAULT_BIN (default: target/debug/tokenvault,
# built if missing or older than the sources).
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-100}"
VENV=.ci/.venv
BIN="${TOKENVAULT_BIN:-target/debug/tokenvault}"
started=$(date +%s)

if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -qx "schemathesis, version $SCHEMATHESIS_VERSION"; then
  echo "schemathesis: installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

# `cargo test --workspace` leaves the vault binary in target/debug (integration tests need it);
# build it only when it is missing or older than a source it is built from (tests and the
# test-only crates do not count: editing them does not relink the binary).
sources="crates/crypto crates/http crates/providers crates/service crates/store crates/tokenvault/src Cargo.lock"
# shellcheck disable=SC2086
if [ ! -x "$BIN" ] || [ -n "$(find $sources -newer "$BIN" -type f -not -path '*/tests/*' -print -quit)" ]; then
  echo "schemathesis: building $BIN"
  cargo build --locked -p tokenvault
fi

work=$(mktemp -d)
vault_pid=""
cleanup() {
  if [ -n "$vault_pid" ] && kill -0 "$vault_pid" 2>/dev/null; then
    kill "$vault_pid" 2>/dev/null || true
    wait "$vault_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
export TOKENVAULT_DATA_DIR="$work/data"

# --allow-private-egress: the document lets URLs name localhost (http is allowed only there), and
# a URL the vault would call is refused at a loopback address unless the operator allows it. No
# URL stored here is ever called: no grant is connected, no webhook event happens.
"$BIN" serve --listen "127.0.0.1:$port" --allow-private-egress >"$work/vault.log" 2>&1 &
vault_pid=$!
for _ in $(seq 1 100); do
  curl -fsS "$base/readyz" >/dev/null 2>&1 && break
  kill -0 "$vault_pid" 2>/dev/null || { cat "$work/vault.log"; echo "schemathesis: the vault did not start"; exit 1; }
  sleep 0.1
done
curl -fsS "$base/readyz" >/dev/null || { cat "$work/vault.log"; echo "schemathesis: the vault is not ready"; exit 1; }

admin=$("$BIN" admin-token --name schemathesis)
json_field() { python3 -c "import json, sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }
app_id=$(curl -fsS -X POST "$base/admin/v1/apps" -H "authorization: Bearer $admin" \
  -H 'content-type: application/json' -d '{"name":"schemathesis"}' | json_field id)
api_key=$(curl -fsS -X POST "$base/admin/v1/apps/$app_id/api-keys" -H "authorization: Bearer $admin" \
  -H 'content-type: application/json' -d '{"name":"schemathesis","scopes":["*"]}' | json_field key)

# A workaround for a CPython 3.11 bug, see the module.
export PYTHONPATH=".ci${PYTHONPATH:+:$PYTHONPATH}" SCHEMATHESIS_HOOKS=schemathesis_hooks

run() {
  local label=$1 credential=$2
  shift 2
  echo "schemathesis: $label operations"
  "$VENV/bin/schemathesis" --no-color --config-file .ci/schemathesis.toml run "$base/openapi.json" \
    --header "Authorization: Bearer $credential" \
    --max-examples "$MAX_EXAMPLES" \
    --checks all \
    --seed 1 \
    --generation-database none \
    --workers 2 \
    "$@"
}

status=0
# The app operations first: the admin run may delete the app (and so its key).
run app "$api_key" --exclude-path-regex '^/admin/' || status=1
run admin "$admin" --include-path-regex '^/admin/' || status=1

if [ "$status" -ne 0 ]; then
  echo "schemathesis: FAILED (vault log follows)"
  tail -n 50 "$work/vault.log"
fi
echo "schemathesis: took $(($(date +%s) - started)) s"
exit "$status"
