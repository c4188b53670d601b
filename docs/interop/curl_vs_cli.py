"""curl --aws-sigv4 against `palisade sign --profile aws4`: a listener captures what curl sends."""
import http.server, threading, subprocess, sys, json, datetime
BIN = sys.argv[1]
AKID, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
got = {}
class H(http.server.BaseHTTPRequestHandler):
    def handle_one(self):
        n = int(self.headers.get("content-length") or 0)
        got["body"] = self.rfile.read(n)
        got["headers"] = list(self.headers.items()); got["path"] = self.path; got["method"] = self.command
        self.send_response(200); self.send_header("content-length", "0"); self.end_headers()
    do_GET = do_POST = do_PUT = do_DELETE = handle_one
    def log_message(self, *a): pass
srv = http.server.HTTPServer(("127.0.0.1", 0), H); port = srv.server_port
threading.Thread(target=srv.serve_forever, daemon=True).start()
# The last field: whether every correct SigV4 signer must agree. curl 7.88 (Debian 12)
# neither sorts the query nor double-encodes a non-S3 path, and keeps escapes verbatim;
# those cases are reported, not failed.
cases = [
    ("GET", "/api/orders?limit=20&cursor=abc", [], None, False),
    ("GET", "/x?b=2&a=1&a=0&c=", [], None, False),
    ("GET", "/x?q=hello%20world&r=a%2Fb", [], None, True),
    ("GET", "/x?s=%7E", [], None, False),
    ("GET", "/x?q=%e2%82%ac", [], None, False),
    ("GET", "/a%20b/c", [], None, False),
    ("GET", "/api/orders?cursor=abc&limit=20", [], None, True),
    ("POST", "/api/orders", ["Content-Type: application/json", "X-Custom:   a   b  "], '{"a":1}', True),
]
fail = 0
for method, target, hdrs, data, must_match in cases:
    args = ["curl", "-s", "-o", "/dev/null", "-X", method, "--aws-sigv4", "aws:amz:us-east-1:execute-api",
            "--user", f"{AKID}:{SECRET}", f"http://127.0.0.1:{port}{target}"]
    for h in hdrs: args += ["-H", h]
    if data is not None: args += ["--data-binary", data]
    subprocess.run(args, check=True)
    h = {k.lower(): v for k, v in got["headers"]}
    ts = datetime.datetime.strptime(h["x-amz-date"], "%Y%m%dT%H%M%SZ").strftime("%Y-%m-%dT%H:%M:%SZ")
    signed = h["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    cli = [BIN, "sign", "--access-key-id", AKID, "--secret-stdin", "--profile", "aws4", "--region", "us-east-1",
           "--service", "execute-api", "--timestamp", ts, "--json", method, f"http://127.0.0.1:{port}{got['path']}"]
    for name in signed:
        if name not in ("host", "x-amz-date"): cli += ["-H", f"{name}: {h[name]}"]
    if data is not None: cli += ["--data", data]
    p = subprocess.run(cli, input=SECRET, capture_output=True, text=True)
    ours = {k.lower(): v for k, v in json.loads(p.stdout).items()} if p.returncode == 0 else {"error": p.stderr}
    ok = ours.get("authorization") == h["authorization"]
    fail += must_match and not ok
    print("OK  " if ok else ("DIFF" if must_match else "DIFF (curl's canonicalization)"), method, target, "signed:", ";".join(signed))
    if not ok and must_match: print("   curl:", h["authorization"]); print("   ours:", ours)
print("failures:", fail); sys.exit(1 if fail else 0)
