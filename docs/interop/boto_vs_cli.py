import datetime, subprocess, sys, json
from unittest import mock
import botocore.auth
from botocore.auth import SigV4Auth, S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

BIN = sys.argv[1]
AKID, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TS = datetime.datetime(2026, 11, 28, 12, 0, 0, tzinfo=datetime.timezone.utc)

cases = [
    ("GET", "https://api.example.com/", {}, None, "execute-api"),
    ("GET", "https://api.example.com/api/orders?limit=20&cursor=abc", {}, None, "execute-api"),
    ("GET", "https://api.example.com/a%20b/c~d?b=2&a=1&a=0&c=", {}, None, "execute-api"),
    # botocore signs a query it did not encode verbatim; SigV4 (and every other signer)
    # re-encodes %7E as ~ and lower-case hex in upper case: these two differ on purpose.
    ("GET", "https://api.example.com/x?q=hello%20world&r=a%2Fb&s=%7E", {}, None, "execute-api"),
    ("GET", "https://api.example.com/x?q=a+b", {}, None, "execute-api"),
    ("GET", "https://api.example.com/x?flag&z=1", {}, None, "execute-api"),
    ("GET", "https://api.example.com/x?q=%e2%82%ac", {}, None, "execute-api"),
    ("GET", "https://api.example.com/a/./b/../c//d", {}, None, "execute-api"),
    ("GET", "https://api.example.com/%41%2F%7e", {}, None, "execute-api"),
    ("POST", "https://api.example.com/api/orders", {"Content-Type": "application/json", "X-Custom": "  a   b  c "}, b'{"a":1}', "execute-api"),
    ("PUT", "https://bucket.s3.amazonaws.com/my%20key/a//b/../c.txt", {"Content-Type": "text/plain"}, b"hello", "s3"),
    ("GET", "https://bucket.s3.amazonaws.com/k?list-type=2&prefix=a%2Fb", {}, None, "s3"),
    ("DELETE", "https://api.example.com:8443/r/1", {"X-Amz-Meta-Foo": "bar"}, None, "execute-api"),
]
EXPECTED_DIFF = {"https://api.example.com/x?q=hello%20world&r=a%2Fb&s=%7E", "https://api.example.com/x?q=%e2%82%ac"}
fail = 0
for method, url, headers, body, service in cases:
    req = AWSRequest(method=method, url=url, headers=dict(headers), data=body)
    creds = Credentials(AKID, SECRET)
    auth = (S3SigV4Auth if service == "s3" else SigV4Auth)(creds, service, "us-east-1")
    with mock.patch.object(botocore.auth, "get_current_datetime", lambda: TS):
        auth.add_auth(req)
    want = {k.lower(): v for k, v in req.headers.items() if k.lower() in ("authorization", "x-amz-date", "x-amz-content-sha256")}
    args = [BIN, "sign", "--access-key-id", AKID, "--secret-stdin", "--profile", "aws4", "--region", "us-east-1",
            "--service", service, "--timestamp", "2026-11-28T12:00:00Z", "--json", method, url]
    for k, v in headers.items():
        args += ["-H", f"{k}: {v}"]
    if body is not None:
        args += ["--data", body.decode()]
    p = subprocess.run(args, input=SECRET, capture_output=True, text=True)
    if p.returncode != 0:
        print("CLI ERROR", method, url, p.stderr.strip()); fail += 1; continue
    got = {k.lower(): v for k, v in json.loads(p.stdout).items()}
    got = {k: v for k, v in got.items() if k in want}
    ok = got == want
    expected = url in EXPECTED_DIFF
    fail += ok == expected
    print("OK  " if ok else ("DIFF (expected: non-canonical escapes)" if expected else "DIFF"), method, url)
    if not ok and not expected:
        print("   boto:", want); print("   ours:", got)
print("failures:", fail)
sys.exit(1 if fail else 0)
