#!/usr/bin/env bash
# The curl walk-through of docs/service.md (the same lines; a test runs this file against a live
# `pension-cert serve --demo` and checks that docs/service.md shows it verbatim): one certification over
# HTTP with the demo kit, from session to verified certificate. Needs curl (7.76+) and python3 (to read JSON).
set -euo pipefail
BASE=${BASE:-http://127.0.0.1:8000}    # where `pension-cert serve --demo` listens
KIT=${KIT:-var/demo}                   # the demo kit it wrote (PENSION_CERT_VAR_DIR/demo)
API_KEY=${API_KEY:-dev-api-key}        # a channel key (PENSION_CERT_API_KEYS); the development default
call() {  # call CURL_ARGS...: the answer on stdout; an error answer ({"error": {"code", …}}) on stderr, and stop
  local out
  out=$(curl -sS --fail-with-body "$@") || { echo "$out" >&2; return 1; }
  printf '%s\n' "$out"
}
field() {  # field NAME[.NAME...] < JSON: one value of a JSON answer (what jq -r does, where installed)
  python3 -c 'import functools, json, sys
v = functools.reduce(lambda d, k: d[k], sys.argv[1].split("."), json.load(sys.stdin))
print(v if isinstance(v, str) else json.dumps(v, ensure_ascii=False))' "$1"
}

# 1. Open a session for the kit's beneficiary: a token for the citizen's device and the action challenge.
EXTERNAL_ID=$(field external_id <"$KIT/kit.json")   # DEMO-0001, imported by serve --demo
SESSION=$(call "$BASE/api/v1/sessions" -H "X-API-Key: $API_KEY" -H 'Content-Type: application/json' \
  -d "{\"external_id\": \"$EXTERNAL_ID\", \"template_consent\": true}")
SID=$(field session_id <<<"$SESSION")
TOKEN=$(field token <<<"$SESSION")
NONCE=$(field challenge.nonce <<<"$SESSION")
echo "challenge: $(field challenge.actions <<<"$SESSION")"   # the kit's video performs these (serve --demo)

# 2. Upload the ID-card photo, then 3. the selfie video with the challenge nonce; the video queues the session.
call "$BASE/api/v1/sessions/$SID/id-card" -H "Authorization: Bearer $TOKEN" -H "Idempotency-Key: card-$SID" \
  -F "file=@$KIT/card.jpg;type=image/jpeg" >/dev/null
call "$BASE/api/v1/sessions/$SID/video" -H "Authorization: Bearer $TOKEN" -H "Idempotency-Key: video-$SID" \
  -F "file=@$KIT/selfie.webm;type=video/webm" -F "nonce=$NONCE" >/dev/null

# 4. Wait for the decision (seconds on a warm server; the first one also waits for the workers' models).
for _ in $(seq 180); do
  RESULT=$(call "$BASE/api/v1/sessions/$SID/result" -H "Authorization: Bearer $TOKEN")
  case $(field state <<<"$RESULT") in decided | failed) break ;; esac
  sleep 1
done
echo "decision: $(field decision <<<"$RESULT"), reasons: $(field reasons <<<"$RESULT")"
echo "scores: $(field result.scores <<<"$RESULT")"

# 5. The certificate, and its verification as anyone holding its QR code would do it (no key needed).
CERT=$(call "$BASE/api/v1/sessions/$SID/certificate" -H "Authorization: Bearer $TOKEN")
call "$(field verify_url <<<"$CERT")"
