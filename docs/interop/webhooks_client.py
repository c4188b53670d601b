"""The Standard Webhooks reference library (standardwebhooks on PyPI) signs deliveries;
the webhook_receiver example (palisade-signing's StandardWebhook) verifies them."""
import sys, time, json, base64, secrets, datetime, requests
from standardwebhooks.webhooks import Webhook

URL, SECRET = sys.argv[1], sys.argv[2]
hook = Webhook(SECRET)
fail = 0

def deliver(name, msg_id, body, expect, signature=None, timestamp=None, headers=None):
    global fail
    ts = timestamp or datetime.datetime.now(datetime.timezone.utc)
    sig = signature if signature is not None else hook.sign(msg_id, ts, body)
    h = {"webhook-id": msg_id, "webhook-timestamp": str(int(ts.timestamp())),
         "webhook-signature": sig, "content-type": "application/json"}
    h.update(headers or {})
    r = requests.post(URL, data=body.encode(), headers=h)
    ok = r.status_code == expect
    fail += not ok
    print("OK  " if ok else "FAIL", name, r.status_code, "(want", expect, ")", "" if ok else r.text[:200])

body = json.dumps({"type": "order.created", "data": {"id": "ord_1"}})
deliver("signed by the reference library", "msg_1", body, 204)
deliver("a retry of the same id", "msg_1", body, 204)
# Rotation: the sender signs with the old and the new secret; one match is enough.
other = Webhook("whsec_" + base64.b64encode(secrets.token_bytes(24)).decode())
now = datetime.datetime.now(datetime.timezone.utc)
both = other.sign("msg_2", now, body) + " " + hook.sign("msg_2", now, body)
deliver("two signatures, one valid (rotation)", "msg_2", body, 204, signature=both, timestamp=now)
deliver("signed with another secret", "msg_3", body, 401, signature=other.sign("msg_3", now, body), timestamp=now)
sig = hook.sign("msg_4", now, body)
r_body = body.replace("ord_1", "ord_2")
deliver("body changed after signing", "msg_4", r_body, 401, signature=sig, timestamp=now)
old = now - datetime.timedelta(minutes=6)
deliver("timestamp 6 minutes old", "msg_5", body, 401, timestamp=old)
future = now + datetime.timedelta(minutes=6)
deliver("timestamp 6 minutes ahead", "msg_6", body, 401, timestamp=future)
# And the library accepts what it signed (a sanity check of the harness itself).
hook.verify(body, {"webhook-id": "msg_7", "webhook-timestamp": str(int(now.timestamp())),
                   "webhook-signature": hook.sign("msg_7", now, body)})
print("failures:", fail); sys.exit(1 if fail else 0)
