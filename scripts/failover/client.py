#!/usr/bin/env python3
"""The clients of the site-failover drill (standard library only).

Signs in to node B1, makes an API token, then writes matters continuously, one at a time,
round robin through node A1 and node B1, the way a load balancer spreads them (a node that
refused a connection is skipped for two seconds). A write counts as acknowledged only when the
node answered 201. Each write is tried once: a write that failed is never sent again, so
nothing is written twice. Runs for --seconds (bounded also by --max-writes), then reads every
matter back through B1 and checks that each acknowledged write is there.

Prints the counts, the longest time without an acknowledged write (the interruption), and how
many writes were acknowledged after the kill (the drill writes its time into --killed-at-file).
Exits 1 if an acknowledged write is missing or nothing was acknowledged after the kill.
"""

import argparse
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request


class Node:
    def __init__(self, name, base, cert):
        self.name, self.base = name, base
        self.ctx = ssl.create_default_context(cafile=cert)
        # The drill's nodes have self-signed certificates for 127.0.0.1.
        self.ctx.check_hostname = False
        self.down_until = 0.0

    def call(self, method, path, body=None, headers=None, timeout=5):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("content-type", "application/json")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=timeout) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()


def token(node, tenant, email, password):
    status, headers, body = node.call("POST", "/api/v1/session", {"tenant": tenant, "email": email, "password": password})
    if status != 200:
        sys.exit(f"sign-in on {node.name} failed: {status} {body[:200]!r}")
    cookie = "; ".join(c.split(";")[0] for c in headers.get_all("set-cookie") or [])
    csrf = json.loads(body)["csrf_token"]
    status, _, body = node.call(
        "POST",
        "/api/v1/tokens",
        {"name": "failover-drill", "scopes": ["read", "write"]},
        {"cookie": cookie, "x-csrf-token": csrf},
    )
    if status != 201:
        sys.exit(f"making a token on {node.name} failed: {status} {body[:200]!r}")
    return json.loads(body)["token"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True, help="node A1 base URL")
    ap.add_argument("--a-cert", required=True)
    ap.add_argument("--b", required=True, help="node B1 base URL")
    ap.add_argument("--b-cert", required=True)
    ap.add_argument("--password-file", required=True)
    ap.add_argument("--seconds", type=float, default=40)
    ap.add_argument("--max-writes", type=int, default=5000)
    ap.add_argument("--killed-at-file", required=True)
    ap.add_argument("--ready-file", required=True, help="touched once writing has started")
    args = ap.parse_args()

    nodes = [Node("A1", args.a, args.a_cert), Node("B1", args.b, args.b_cert)]
    b1 = nodes[1]
    with open(args.password_file) as f:
        password = f.read().strip()
    bearer = {"authorization": "Bearer " + token(b1, "acme", "o@acme.example", password)}

    acknowledged, failed = [], []
    last_ack = start = time.monotonic()
    longest_gap, ack_times = 0.0, []
    open(args.ready_file, "w").close()
    for i in range(args.max_writes):
        now = time.monotonic()
        if now - start > args.seconds:
            break
        up = [n for n in nodes if n.down_until <= now] or nodes
        node = up[i % len(up)]
        ref = f"DRILL-{i}"
        try:
            status, _, body = node.call("POST", "/api/v1/matters", {"reference": ref, "title": "Failover drill"}, bearer)
        except OSError as e:
            node.down_until = time.monotonic() + 2
            failed.append((ref, node.name, str(e)))
            continue
        if status == 201:
            t = time.monotonic()
            longest_gap = max(longest_gap, t - last_ack)
            last_ack = t
            acknowledged.append(ref)
            ack_times.append((time.time(), node.name))
        else:
            failed.append((ref, node.name, f"{status} {body[:120]!r}"))
            time.sleep(0.05)
        time.sleep(0.02)

    killed_at = None
    if os.path.exists(args.killed_at_file):
        with open(args.killed_at_file) as f:
            killed_at = float(f.read().strip())
    after_kill = [t for t, _ in ack_times if killed_at is not None and t > killed_at]

    status, _, body = b1.call("GET", "/api/v1/matters", None, bearer, timeout=30)
    if status != 200:
        sys.exit(f"reading the matters back through B1 failed: {status}")
    stored = {m["reference"] for m in json.loads(body)["items"]}
    missing = [r for r in acknowledged if r not in stored]
    unacknowledged_stored = sorted(stored - set(acknowledged))

    by_node = {n.name: sum(1 for _, w in ack_times if w == n.name) for n in nodes}
    print(f"writes acknowledged: {len(acknowledged)} ({by_node}); failed: {len(failed)}")
    print(f"longest time without an acknowledged write: {longest_gap:.1f} s")
    print(f"writes acknowledged after the kill: {len(after_kill)}")
    print(f"stored: {len(stored)}; acknowledged but missing: {len(missing)}; "
          f"stored though not acknowledged (failed while being answered): {len(unacknowledged_stored)}")
    for ref, name, why in failed[:10]:
        print(f"  failed {ref} on {name}: {why}")
    if missing:
        print(f"MISSING: {missing[:20]}")
        return 1
    if killed_at is None or not after_kill:
        print("no write was acknowledged after the kill")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
