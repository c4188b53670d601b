"""An independent RFC 9421 client (python http-message-signatures) against the server."""
import sys, json, datetime, requests
from http_message_signatures import HTTPMessageSigner, HTTPMessageVerifier, algorithms, resolvers

API, AKID, SECRET = sys.argv[1], sys.argv[2], sys.argv[3]
# Optional: the id of a credential made with `--public-key` and its Ed25519 private key.
ED_KEYID, ED_PRIVATE = (sys.argv[4], sys.argv[5]) if len(sys.argv) > 5 else (None, None)

class Keys(resolvers.HTTPSignatureKeyResolver):
    def resolve_private_key(self, key_id): return SECRET.encode()
    def resolve_public_key(self, key_id): return SECRET.encode()

signer = HTTPMessageSigner(signature_algorithm=algorithms.HMAC_SHA256, key_resolver=Keys())
fail = 0
def run(name, method, path, body=None, components=("@method", "@authority", "@path"), expect=200, mutate=None, sess=requests):
    global fail
    headers = {"Content-Type": "application/json"} if body is not None else {}
    req = requests.Request(method, API + path, headers=headers, data=body).prepare()
    comps = list(components)
    if "?" in path and not any(c.startswith(("@query", "@target-uri", "\"@query")) for c in comps): comps.append("@query")
    signer.sign(req, key_id=AKID, created=datetime.datetime.now(datetime.timezone.utc), label="sig1",
                covered_component_ids=comps, body=body.encode() if body is not None else None, nonce=None)
    if mutate: mutate(req)
    r = requests.Session().send(req)
    ok = r.status_code == expect
    fail += not ok
    print("OK  " if ok else "FAIL", name, r.status_code, "(want", expect, ")", "" if ok else r.text[:300])
    return r

r = run("list orders", "GET", "/api/orders?limit=5")
r = run("create order", "POST", "/api/orders", body=json.dumps({"items":[{"product_id":"prod_abc","quantity":2}],"shipping_address":{"street":"1 Main St","city":"Paris","country":"FR","postal_code":"75001"}}), components=("@method","@authority","@path","content-type"), expect=201)
oid = r.json().get("id") if r.status_code == 201 else None
if oid:
    run("get order", "GET", f"/api/orders/{oid}")
    run("get order target-uri", "GET", f"/api/orders/{oid}", components=("@method","@authority","@target-uri"))
    run("delete order", "DELETE", f"/api/orders/{oid}", expect=204)
def tamper_body(req): req.body = req.body.replace(b"Paris", b"Parix") if isinstance(req.body, bytes) else req.body.replace("Paris", "Parix")
run("tampered body", "POST", "/api/orders", body=json.dumps({"items":[{"product_id":"prod_abc","quantity":2}],"shipping_address":{"street":"1 Main St","city":"Paris","country":"FR","postal_code":"75001"}}), components=("@method","@authority","@path","content-type"), expect=401, mutate=tamper_body)
def tamper_path(req): req.url = req.url.replace("limit=5", "limit=6")
run("tampered query", "GET", "/api/orders?limit=5", expect=401, mutate=tamper_path)
run("query not covered", "GET", "/api/orders?limit=5", components=("@method","@authority","@path","\"@query-param\";name=\"limit\""), expect=401)
if ED_KEYID:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    private = load_pem_private_key(open(ED_PRIVATE, "rb").read(), password=None)
    class EdKeys(resolvers.HTTPSignatureKeyResolver):
        def resolve_private_key(self, key_id): return private
        def resolve_public_key(self, key_id): return private.public_key()
    ed_signer = HTTPMessageSigner(signature_algorithm=algorithms.ED25519, key_resolver=EdKeys())
    for name, mutate, expect in [("ed25519 list orders", None, 200), ("ed25519 tampered query", tamper_path, 401)]:
        req = requests.Request("GET", API + "/api/orders?limit=5").prepare()
        ed_signer.sign(req, key_id=ED_KEYID, created=datetime.datetime.now(datetime.timezone.utc), label="sig1",
                       covered_component_ids=["@method", "@authority", "@path", "@query"])
        if mutate: mutate(req)
        r = requests.Session().send(req)
        ok = r.status_code == expect
        fail += not ok
        print("OK  " if ok else "FAIL", name, r.status_code, "(want", expect, ")", "" if ok else r.text[:300])
print("failures:", fail); sys.exit(1 if fail else 0)
