"""Independent OAuth/JWT clients (Authlib, PyJWT) against the server."""
import sys, time, jwt, requests, base64, hashlib, secrets, urllib.parse
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7636 import create_s256_code_challenge

API, CID, CSECRET, ACID, ACSECRET, USER, PW = sys.argv[1:8]
# Optional: a client registered for the device grant (RFC 8628).
DCID, DCSECRET = (sys.argv[8], sys.argv[9]) if len(sys.argv) > 9 else (None, None)
# Like a well-behaved client, wait out a 429's Retry-After: the server slows an address
# down for a second or two after a few failed authentications (this run's own negative
# checks, and the RFC 9421 client's, come from the same address).
def polite(send):
    def call(*args, **kwargs):
        for _ in range(3):
            response = send(*args, **kwargs)
            if response.status_code != 429:
                return response
            time.sleep(min(float(response.headers.get("retry-after", "1")), 5))
        return response
    return call
requests.get, requests.post = polite(requests.get), polite(requests.post)

fail = 0
def check(name, cond, extra=""):
    global fail
    fail += not cond
    print("OK  " if cond else "FAIL", name, "" if cond else extra)

meta = requests.get(API + "/.well-known/oauth-authorization-server").json()
check("metadata issuer", "issuer" in meta and meta["token_endpoint"].endswith("/oauth/token"), meta)
for method in ("client_secret_basic", "client_secret_post"):
    s = OAuth2Session(CID, CSECRET, scope="orders:read", token_endpoint_auth_method=method)
    tok = s.fetch_token(API + "/oauth/token", grant_type="client_credentials")
    check(f"client_credentials {method}", tok.get("token_type", "").lower() == "bearer" and tok.get("expires_in") == 900, tok)
at = tok["access_token"]
jwks = jwt.PyJWKClient(API + "/.well-known/jwks.json")
key = jwks.get_signing_key_from_jwt(at)
hdr = jwt.get_unverified_header(at)
claims = jwt.decode(at, key.key, algorithms=["ES256", "EdDSA", "RS256", "PS256"], audience=jwt.decode(at, options={"verify_signature": False})["aud"], issuer=meta["issuer"])
check("JWT verifies with PyJWT + JWKS", hdr.get("typ") == "at+jwt" and all(c in claims for c in ("iss","sub","aud","exp","iat","nbf","jti","scope","client_id")), (hdr, claims))
r = s.get(API + "/api/orders")
check("bearer on /api/orders", r.status_code == 200, r.text)
# introspection and revocation, RFC 7662/7009
r = requests.post(API + "/oauth/introspect", data={"token": at}, auth=(CID, CSECRET)).json()
check("introspect active", r.get("active") is True and r.get("client_id") == CID, r)
requests.post(API + "/oauth/revoke", data={"token": at}, auth=(CID, CSECRET))
r = requests.post(API + "/oauth/introspect", data={"token": at}, auth=(CID, CSECRET)).json()
check("introspect after revoke", r.get("active") is False, r)
r = requests.get(API + "/api/orders", headers={"Authorization": "Bearer " + at})
check("revoked token refused", r.status_code == 401, r.status_code)
# authorization code + PKCE, with Authlib building the URL and exchanging the code
redirect = "https://client.example.com/cb"
s = OAuth2Session(ACID, ACSECRET, scope="orders:read", redirect_uri=redirect, code_challenge_method="S256")
verifier = secrets.token_urlsafe(48)
url, state = s.create_authorization_url(API + "/oauth/authorize", code_verifier=verifier)
r = requests.get(url, auth=(USER, PW), allow_redirects=False)
check("authorize redirects", r.status_code == 302, (r.status_code, r.text[:200]))
loc = r.headers.get("location", "")
tok = s.fetch_token(API + "/oauth/token", authorization_response=loc, code_verifier=verifier)
check("code exchange", "access_token" in tok and "refresh_token" in tok, tok)
old_refresh = tok["refresh_token"]
tok2 = s.refresh_token(API + "/oauth/token", refresh_token=old_refresh)
check("refresh rotates", tok2.get("refresh_token") not in (None, old_refresh), tok2)
r = requests.post(API + "/oauth/token", data={"grant_type": "refresh_token", "refresh_token": old_refresh}, auth=(ACID, ACSECRET))
check("reused refresh -> invalid_grant", r.status_code == 400 and r.json().get("error") == "invalid_grant", r.text)
r = requests.get(API + "/api/orders", headers={"Authorization": "Bearer " + tok2["access_token"]})
check("family revoked after reuse", r.status_code == 401, r.status_code)
# plain PKCE refused
r = requests.get(API + "/oauth/authorize", params={"response_type": "code", "client_id": ACID, "redirect_uri": redirect, "scope": "orders:read", "state": "x", "code_challenge": "abc"*15, "code_challenge_method": "plain"}, auth=(USER, PW), allow_redirects=False)
check("plain PKCE refused", r.status_code in (302, 400) and ("error=" in r.headers.get("location", "") or r.status_code == 400), (r.status_code, r.headers.get("location"), r.text))
if DCID:
    # RFC 8628 device flow, by hand as a TV or CLI app would run it.
    da = requests.post(API + "/oauth/device_authorization", data={"scope": "orders:read"}, auth=(DCID, DCSECRET))
    d = da.json()
    check("device_authorization", da.status_code == 200 and all(k in d for k in ("device_code", "user_code", "verification_uri", "expires_in", "interval")), d)
    grant = {"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": d.get("device_code", "")}
    r = requests.post(API + "/oauth/token", data=grant, auth=(DCID, DCSECRET))
    check("authorization_pending before approval", r.status_code == 400 and r.json().get("error") == "authorization_pending", r.text)
    interval = int(d.get("interval", 5))
    r = requests.post(API + "/oauth/token", data=grant, auth=(DCID, DCSECRET))
    slow = r.status_code == 400 and r.json().get("error") == "slow_down"
    check("slow_down when polled faster than the interval", slow, r.text)
    if slow:
        interval += 5  # RFC 8628 section 3.5: for this and every later request
    r = requests.post(API + "/oauth/device", data={"user_code": d.get("user_code", ""), "action": "approve"}, auth=(USER, PW))
    check("user approves", r.status_code == 200, (r.status_code, r.text[:200]))
    # Poll as RFC 8628 section 3.4 says, at the interval.
    for _ in range(4):
        time.sleep(interval + 0.5)
        r = requests.post(API + "/oauth/token", data=grant, auth=(DCID, DCSECRET))
        if r.status_code == 200 or r.json().get("error") not in ("authorization_pending", "slow_down"):
            break
        if r.json().get("error") == "slow_down":
            interval += 5
    tok = r.json()
    check("device token after approval", r.status_code == 200 and "access_token" in tok, r.text)
    time.sleep(interval + 0.5)
    r = requests.post(API + "/oauth/token", data=grant, auth=(DCID, DCSECRET))
    check("device code single use", r.status_code == 400 and r.json().get("error") in ("invalid_grant", "expired_token"), r.text)
print("failures:", fail); sys.exit(1 if fail else 0)
