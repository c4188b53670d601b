#!/usr/bin/env bash
# Independent clients against Palisade: botocore and curl against `palisade sign --profile
# aws4`; http-message-signatures (RFC 9421), Authlib, PyJWT and jose (OAuth 2.0, JWT) and
# schemathesis (an API fuzzer, driven by /openapi.json) against a fresh reference server;
# the Standard Webhooks library against the webhook_receiver example.
# Not part of CI: it installs the clients from PyPI into a virtualenv. Results of the last
# run are in docs/INTEROP.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=$(mktemp -d)
trap 'kill ${server:-} ${receiver:-} ${tls_server:-} 2>/dev/null || true; rm -rf "$work"' EXIT
export PALISADE_LISTEN=127.0.0.1:18080 PALISADE_METRICS_LISTEN=127.0.0.1:19090
api=http://$PALISADE_LISTEN

python3 -m venv "$work/venv"
# The versions docs/INTEROP.md reports.
"$work/venv/bin/pip" install -q botocore==1.43.11 http-message-signatures==3.0.0 requests pyjwt==2.15.1 \
    cryptography authlib==1.9.10 schemathesis==4.32.5 standardwebhooks==1.1.0
py=$work/venv/bin/python

cargo build --release -q -p palisade-server --manifest-path "$root/Cargo.toml"
bin=$root/target/release/palisade
cd "$work"
"$bin" serve >server.log 2>&1 &
server=$!
for _ in $(seq 50); do curl -sf "$api/health" >/dev/null && break; sleep 0.2; done

json() { "$py" -c "import json,sys; d=json.load(sys.stdin); print(' '.join(str(d[k]) for k in sys.argv[1:]))" "$@"; }
read -r akid secret < <("$bin" credentials create --owner alice --scopes orders:read,orders:write --json | json access_key_id secret)
read -r cc_id cc_secret < <("$bin" clients create --name cc --scopes orders:read --grant client_credentials --json | json client_id client_secret)
read -r ac_id ac_secret < <("$bin" clients create --name web --scopes orders:read --grant authorization_code \
    --redirect-uri https://client.example.com/cb --json | json client_id client_secret)
read -r dc_id dc_secret < <("$bin" clients create --name tv --scopes orders:read --grant device_code --json | json client_id client_secret)
printf 'pw-for-bob-123' | "$bin" users create bob --password-stdin >/dev/null
openssl genpkey -algorithm ed25519 -out ed25519.key
openssl pkey -in ed25519.key -pubout -out ed25519.pub
ed_id=$("$bin" credentials create --owner alice --scopes orders:read --public-key ed25519.pub --json | json access_key_id)
key=$("$bin" keys create --owner carol --scopes orders:read,orders:write --rate-limit 1000000 --json | json key)

status=0
"$py" "$here/boto_vs_cli.py" "$bin" || status=1
"$py" "$here/curl_vs_cli.py" "$bin" || status=1
"$py" "$here/rfc9421_client.py" "$api" "$akid" "$secret" "$ed_id" "$work/ed25519.key" || status=1
"$py" "$here/oauth_client.py" "$api" "$cc_id" "$cc_secret" "$ac_id" "$ac_secret" bob pw-for-bob-123 \
    "$dc_id" "$dc_secret" || status=1
# Node, when installed: jose as a resource server would use it; the AWS SDK for
# JavaScript v3's signer and the aws4 package against `palisade sign --profile aws4`;
# a second RFC 9421 implementation (http-message-signatures on npm) against the server.
if command -v npm >/dev/null; then
    cp "$here/jose_check.mjs" "$here/sigv4_vs_cli.mjs" "$here/rfc9421_node.mjs" "$work/"
    (cd "$work" && npm install --silent jose@5.10.0 @smithy/signature-v4@5.7.5 \
        @aws-crypto/sha256-js@5.2.0 aws4@1.13.2 http-message-signatures@1.0.6 >/dev/null) || status=1
    (cd "$work" && node jose_check.mjs "$api" "$cc_id" "$cc_secret") || status=1
    (cd "$work" && node sigv4_vs_cli.mjs "$bin") || status=1
    (cd "$work" && node rfc9421_node.mjs "$api" "$akid" "$secret" "$ed_id" "$work/ed25519.key") || status=1
fi
# The Standard Webhooks reference library signs; the webhook_receiver example verifies.
whsec=whsec_$("$py" -c 'import base64, secrets; print(base64.b64encode(secrets.token_bytes(24)).decode())')
cargo build --release -q -p palisade-examples --bin webhook_receiver --manifest-path "$root/Cargo.toml"
WEBHOOK_SECRET=$whsec "$root/target/release/webhook_receiver" --listen 127.0.0.1:18081 >receiver.log 2>&1 &
receiver=$!
for _ in $(seq 50); do curl -s -o /dev/null 127.0.0.1:18081 && break; sleep 0.2; done
"$py" "$here/webhooks_client.py" http://127.0.0.1:18081/webhooks "$whsec" || status=1
kill "$receiver"
# TLS and mutual TLS with OpenSSL and curl: a second server on the development CA.
"$bin" certs dev --out "$work/certs" >/dev/null
cat >"$work/tls.toml" <<TOML
[tls]
cert = "$work/certs/server.pem"
key = "$work/certs/server.key"
[tls.client]
ca = "$work/certs/ca.pem"
crl = ["$work/certs/crl.pem"]
mode = "optional"
[[tls.client.identities]]
id = "spiffe://palisade.dev/client"
scopes = ["orders:read"]
TOML
PALISADE_LISTEN=127.0.0.1:18443 PALISADE_METRICS_LISTEN=127.0.0.1:19091 \
    "$bin" --config "$work/tls.toml" --data-dir "$work/tls-data" serve >tls.log 2>&1 &
tls_server=$!
for _ in $(seq 50); do curl -sf --cacert "$work/certs/ca.pem" https://localhost:18443/health >/dev/null && break; sleep 0.2; done
expect() { # NAME WANT GOT
    if [ "$2" = "$3" ]; then echo "OK   $1: $3"; else echo "FAIL $1: got $3, want $2"; status=1; fi
}
tls_curl() { curl -s -o /dev/null -w '%{http_code}' --cacert "$work/certs/ca.pem" "$@"; }
expect "mTLS client certificate on /api/orders" 200 \
    "$(tls_curl --cert "$work/certs/client.pem" --key "$work/certs/client.key" https://localhost:18443/api/orders)"
expect "no client certificate" 401 "$(tls_curl https://localhost:18443/api/orders)"
protocol() { openssl s_client -connect 127.0.0.1:18443 "$1" -CAfile "$work/certs/ca.pem" </dev/null 2>/dev/null |
    awk -F', ' '/^New, / {print $2; exit}'; }
expect "TLS 1.3" TLSv1.3 "$(protocol -tls1_3)"
expect "TLS 1.2" TLSv1.2 "$(protocol -tls1_2)"
# The client allows TLS 1.1 (security level 0), so a refusal is the server's: its alert.
tls11=$(openssl s_client -connect 127.0.0.1:18443 -tls1_1 -cipher 'DEFAULT@SECLEVEL=0' </dev/null 2>&1 || true)
case "$tls11" in
*"SSL alert number"*) expect "TLS 1.1 refused by the server" refused refused ;;
*) expect "TLS 1.1 refused by the server" refused "$(printf '%s' "$tls11" | head -1)" ;;
esac
kill "$tls_server"

# Every check but positive_data_acceptance: data a schema allows can still be refused for
# reasons no schema states (an unissued cursor, a webhook host that does not resolve to a
# public address, both an API key and a bearer token, which the contract answers 400).
"$work/venv/bin/st" run "$api/openapi.json" -H "X-API-Key: $key" --max-examples 100 --checks all \
    --exclude-checks positive_data_acceptance --workers 2 || status=1
exit $status
