#!/usr/bin/env bash
# Fuzzes a live `latchkey serve` against the OpenAPI document with Schemathesis.
#
#   scripts/schemathesis.sh [path-to-latchkey-binary]      (default: .build/debug/latchkey)
#
# Starts the service on 127.0.0.1 (a free port, a fresh temporary data folder), signs up an owner and an installer,
# signs both in, creates a site and authorizes the installer on it, then runs `schemathesis run` with the owner's
# bearer token: server errors, undocumented statuses, content types, headers and answer bodies are checked on every
# operation except `GET /notifications/stream` (an endless stream) and `GET /devices/channel` (a WebSocket upgrade,
# for devices). `DELETE /sessions` runs last, on the installer's token, so that signing out does not end the owner's
# session halfway through. Stops the service on exit; exits non-zero when Schemathesis reports a failure.
#
# Needs curl, python3 and Schemathesis 4 (`python3 -m pip install schemathesis`).
# Tunable through the environment:
#   SCHEMATHESIS_MAX_EXAMPLES  test cases per operation and phase (default 50: about a minute on 2 cores)
#   SCHEMATHESIS_WORKERS       default 1; with more, Hypothesis on CPython 3.11.7 can fail with "AST constructor
#                              recursion depth mismatch" (a CPython threading bug, not the API's)
#   SCHEMATHESIS_PHASES        default examples,coverage,fuzzing
#   SCHEMATHESIS_SEED          to repeat a run
#   SCHEMATHESIS_REPORT_DIR    writes JUnit and HAR reports there
#   KEEP_TMP=1                 keeps the data folder and the server log
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
binary="${1:-$repo/.build/debug/latchkey}"
max_examples="${SCHEMATHESIS_MAX_EXAMPLES:-50}"
workers="${SCHEMATHESIS_WORKERS:-1}"
phases="${SCHEMATHESIS_PHASES:-examples,coverage,fuzzing}"
checks="not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance"
schema_file="$repo/Sources/LatchkeyCloud/Resources/openapi.json"

say() { printf '==> %s\n' "$*" >&2; }
fail() { printf 'schemathesis.sh: %s\n' "$*" >&2; exit 2; }

[[ -x "$binary" ]] || fail "no latchkey binary at $binary (build it, or pass its path)"
command -v schemathesis >/dev/null || fail "schemathesis is not installed: python3 -m pip install schemathesis"
command -v curl >/dev/null || fail "curl is needed"
[[ -f "$schema_file" ]] || fail "no OpenAPI document at $schema_file"

work="$(mktemp -d "${TMPDIR:-/tmp}/latchkey-schemathesis.XXXXXX")"
server_pid=""
cleanup() {
    local status=$?
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [[ "${KEEP_TMP:-0}" == 1 ]]; then say "kept $work"; else rm -rf "$work"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
api="$base/api/v1"

say "starting $binary serve on 127.0.0.1:$port (data in $work/data)"
LOG_LEVEL=warning "$binary" serve --host 127.0.0.1 --port "$port" --data-dir "$work/data" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 120); do
    curl -fsS "$base/healthz" >/dev/null 2>&1 && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; fail "the server exited before it was ready"; }
    sleep 0.5
done
curl -fsS "$base/healthz" >/dev/null || { tail -20 "$work/server.log" >&2; fail "the server did not answer /healthz in 60 s"; }

# POSTs JSON; prints the body, fails on an unexpected status.
post() {
    local path=$1 body=$2 expected=$3 token=${4:-} answer status
    local args=(-sS -X POST "$api$path" -H 'Content-Type: application/json' --data-binary "$body" -w '\n%{http_code}')
    [[ -n "$token" ]] && args+=(-H "Authorization: Bearer $token")
    answer="$(curl "${args[@]}")"
    status="${answer##*$'\n'}"
    answer="${answer%$'\n'*}"
    [[ "$status" == "$expected" ]] || fail "POST $path answered $status, not $expected: $answer"
    printf '%s' "$answer"
}
field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

password='Correct-Horse-42x'
owner_email="owner-$port@example.com"
installer_email="installer-$port@example.com"
say "signing up $owner_email and $installer_email"
post /accounts "{\"email\":\"$owner_email\",\"password\":\"$password\",\"name\":\"Olga Owner\",\"role\":\"owner\"}" 201 >/dev/null
installer_id="$(post /accounts "{\"email\":\"$installer_email\",\"password\":\"$password\",\"name\":\"Ivo Installer\",\"role\":\"installer\"}" 201 | field id)"
owner_token="$(post /sessions "{\"email\":\"$owner_email\",\"password\":\"$password\"}" 201 | field token)"
installer_token="$(post /sessions "{\"email\":\"$installer_email\",\"password\":\"$password\"}" 201 | field token)"
site_id="$(post /sites '{"name":"Schemathesis site","address":"Via Roma 1, Milano"}' 201 "$owner_token" | field id)"
post "/sites/$site_id/authorizations" "{\"installerEmail\":\"$installer_email\",\"permissions\":[\"view\",\"password_reset\"]}" 201 "$owner_token" >/dev/null
say "site $site_id, installer $installer_id authorized on it"

# The service's own document when it serves one; else the repository's, and that operation is left out.
openapi_status="$(curl -s -o "$work/served-openapi.json" -w '%{http_code}' "$api/openapi.json")"
exclude_openapi=()
if [[ "$openapi_status" == 200 ]]; then
    location="$api/openapi.json"
    if ! cmp -s "$work/served-openapi.json" "$schema_file"; then
        say "note: the served document differs from $schema_file"
    fi
else
    say "the server answers $openapi_status for /api/v1/openapi.json: using $schema_file, without GET /openapi.json"
    location="$schema_file"
    exclude_openapi=(--exclude-operation-id getOpenAPI)
fi

# Real ids some of the time, so that the happy paths of the site's operations are reached too.
cat >"$work/schemathesis.toml" <<EOF
[dictionaries.sites]
values = ["$site_id"]

[dictionaries.installers]
values = ["$installer_id"]

[dictionaries.installer-emails]
values = ["$installer_email"]

[parameters]
"path.id" = { dictionary = "sites", probability = 0.5 }
"path.installerId" = { dictionary = "installers", probability = 0.5 }
"body.installerEmail" = { dictionary = "installer-emails", probability = 0.5 }
EOF

common=(
    --url "$api" --checks "$checks" --phases "$phases" --max-examples "$max_examples" --workers "$workers"
    --request-timeout 10 --continue-on-failure --no-color --suppress-health-check all --warnings off
)
[[ -n "${SCHEMATHESIS_SEED:-}" ]] && common+=(--seed "$SCHEMATHESIS_SEED")
main_report=() sign_out_report=()
if [[ -n "${SCHEMATHESIS_REPORT_DIR:-}" ]]; then
    main_report=(--report junit,har --report-dir "$SCHEMATHESIS_REPORT_DIR/main")
    sign_out_report=(--report junit,har --report-dir "$SCHEMATHESIS_REPORT_DIR/sign-out")
fi

started=$SECONDS
status=0
say "schemathesis run $location (owner's token; all operations but the stream, the device channel and DELETE /sessions)"
# From the temporary folder: Schemathesis keeps a `.schemathesis/` cache in its working directory.
cd "$work"
schemathesis --config-file "$work/schemathesis.toml" run "$location" "${common[@]}" \
    -H "Authorization: Bearer $owner_token" \
    --exclude-operation-id streamNotifications --exclude-operation-id openDeviceChannel --exclude-operation-id signOut \
    "${exclude_openapi[@]}" "${main_report[@]}" || status=$?

say "schemathesis run $location (installer's token; DELETE /sessions)"
schemathesis run "$location" "${common[@]}" -H "Authorization: Bearer $installer_token" \
    --include-operation-id signOut "${sign_out_report[@]}" || second=$?
[[ "${second:-0}" == 0 ]] || status=$second

if ! kill -0 "$server_pid" 2>/dev/null; then
    say "the server died during the run:"; tail -20 "$work/server.log" >&2; status=1
fi
errors="$(grep -c -E ' (error|critical) ' "$work/server.log" || true)"
say "summary: $(( SECONDS - started )) s, schema $location, $max_examples examples per operation," \
    "server log errors: $errors, result: $([[ $status == 0 ]] && echo passed || echo "FAILED ($status)")"
if [[ "$errors" != 0 ]]; then grep -E ' (error|critical) ' "$work/server.log" | tail -5 >&2; fi
exit "$status"
