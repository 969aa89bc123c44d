#!/usr/bin/env python3
"""Interop suite: real servers (Knot DNS, nginx) and real Open MPIC code against mpic-node.

1. Every case in cases.py is POSTed to a node's Open MPIC endpoint (mutual TLS) exactly as
   Open MPIC's coordinator would; the response must parse with open-mpic-core's own pydantic
   models, carry a signature that verifies with the node's key, and match the expected verdict.
2. The same request goes to Open MPIC's own checkers (MpicCaaChecker / MpicDcvChecker) pointed at
   the same Knot server and nginx; their verdict must be the one the table records.
3. Open MPIC's MpicCoordinator runs with three of our nodes as its remote perspectives (ARIN,
   RIPE NCC, APNIC), no AWS involved, and reaches the expected quorum decisions.

Loopback only. Prints the case table; writes target/interop-report.json; exits 1 on any mismatch.
Run with the virtualenv that has open-mpic-core (make interop creates it).
"""

import asyncio
import base64
import json
import shutil
import ssl
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp
import aiohttp.abc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from open_mpic_core import (
    CaaCheckRequest,
    CaaCheckResponse,
    CheckType,
    DcvCheckRequest,
    DcvCheckResponse,
    MpicCaaChecker,
    MpicCaaRequest,
    MpicCoordinator,
    MpicDcvChecker,
    MpicDcvRequest,
    MpicRequestOrchestrationParameters,
    RemotePerspective,
)
from open_mpic_core.mpic_coordinator.mpic_coordinator import MpicCoordinatorConfiguration

import cases as table
import servers

SIGNATURE_CONTEXT = b"mpic-node/v1 signed result\0"
REPORT = servers.ROOT / "target" / "interop-report.json"


class Endpoint:
    """A primary's mTLS client for one node's Open MPIC listener."""

    def __init__(self, node: servers.Node, credentials: Path):
        self.node = node
        self.context = ssl.create_default_context(cafile=str(credentials / "ca.pem"))
        self.context.check_hostname = False  # dev node certificate; the CA is still verified
        self.context.load_cert_chain(str(credentials / "primary.pem"), str(credentials / "primary.key"))

    def post(self, path: str, body: dict) -> tuple:
        host, port = self.node.openmpic
        request = urllib.request.Request(
            f"https://{host}:{port}/{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=40) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def verify(self, attestation: dict) -> None:
        """The signature in `mpic_node` verifies under this node's published key."""
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(self.node.public_key))
        payload = base64.b64decode(attestation["payload"])
        key.verify(base64.b64decode(attestation["signature"]), SIGNATURE_CONTEXT + payload)


def check_ours(endpoint: Endpoint, case: table.Case) -> dict:
    started = time.monotonic()
    status, body = endpoint.post(case.endpoint, case.body())
    elapsed = time.monotonic() - started
    if status != 200:
        return {"ok": False, "observed": f"HTTP {status}: {body}", "elapsed": elapsed}
    model = CaaCheckResponse if case.endpoint == "caa" else DcvCheckResponse
    parsed = model.model_validate(body)  # Open MPIC's own response model
    attestation = body["mpic_node"]
    endpoint.verify(attestation)
    assert attestation["request_id"] == f"interop-{case.name}", attestation["request_id"]
    observed = (parsed.check_completed, parsed.check_passed, attestation["problem"])
    return {
        "ok": observed == case.expect,
        "observed": observed,
        "elapsed": elapsed,
        "errors": [e.error_message for e in parsed.errors or []],
        "details": body["details"],
    }


class LoopbackResolver(aiohttp.abc.AbstractResolver):
    """Sends Open MPIC's HTTP checker to nginx: every name is 127.0.0.1 at nginx's port."""

    def __init__(self, port: int):
        self.port = port

    async def resolve(self, host, port=0, family=0):
        import socket

        return [
            {"hostname": host, "host": "127.0.0.1", "port": self.port, "family": socket.AF_INET, "proto": 0, "flags": 0}
        ]

    async def close(self):
        return None


def point_open_mpic_at(knot: servers.Knot, nginx: servers.Nginx) -> None:
    import dns.asyncresolver

    resolver = dns.asyncresolver.get_default_resolver()
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = knot.port
    original = aiohttp.TCPConnector

    def connector(*args, **kwargs):
        kwargs["resolver"] = LoopbackResolver(nginx.http_port)
        return original(*args, **kwargs)

    aiohttp.TCPConnector = connector


async def check_open_mpic(case: table.Case, caa_checker, dcv_checker):
    if case.endpoint == "caa":
        response = await caa_checker.check_caa(CaaCheckRequest.model_validate(case.body()))
    else:
        response = await dcv_checker.check_dcv(DcvCheckRequest.model_validate(case.body()))
    return response.check_passed


async def coordinator_runs(endpoints: list) -> list:
    """Open MPIC's coordinator with our three nodes as its remote perspectives."""
    perspectives = [
        RemotePerspective(code=endpoint.node.ident, rir=rir)
        for endpoint, rir in zip(endpoints, ["ARIN", "RIPE NCC", "APNIC"])
    ]
    by_code = {endpoint.node.ident: endpoint for endpoint in endpoints}

    async def call(perspective, check_type, check_request):
        endpoint = by_code[perspective.code]
        path = "caa" if check_type == CheckType.CAA else "dcv"
        body = json.loads(check_request.model_dump_json(exclude_none=True))
        status, answer = await asyncio.to_thread(endpoint.post, path, body)
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {answer}")
        endpoint.verify(answer["mpic_node"])
        model = CaaCheckResponse if check_type == CheckType.CAA else DcvCheckResponse
        return model.model_validate(answer)

    coordinator = MpicCoordinator(
        call, MpicCoordinatorConfiguration(perspectives, 3, 1, "interop-secret")
    )
    orchestration = MpicRequestOrchestrationParameters(perspective_count=3, quorum_count=2)
    runs = [
        ("coordinator-caa-permitted", MpicCaaRequest(domain_or_ip_target="www.signed.test",
            orchestration_parameters=orchestration,
            caa_check_parameters={"caa_domains": [servers.CA]}), True),
        ("coordinator-caa-forbidden", MpicCaaRequest(domain_or_ip_target="deny.signed.test",
            orchestration_parameters=orchestration,
            caa_check_parameters={"caa_domains": [servers.CA]}), False),
        ("coordinator-dns01", MpicDcvRequest(domain_or_ip_target="signed.test",
            orchestration_parameters=orchestration,
            dcv_check_parameters=table.dns01()), True),
        ("coordinator-http01", MpicDcvRequest(domain_or_ip_target="www.signed.test",
            orchestration_parameters=orchestration,
            dcv_check_parameters=table.http01()), True),
        ("coordinator-bogus", MpicDcvRequest(domain_or_ip_target="broken.test",
            orchestration_parameters=orchestration,
            dcv_check_parameters=table.dns01()), False),
    ]
    results = []
    for name, request, expected in runs:
        response = await coordinator.coordinate_mpic(request)
        passed = [p.check_response.check_passed for p in response.perspectives or []]
        results.append({
            "name": name,
            "ok": response.is_valid == expected and len(passed) == 3,
            "is_valid": response.is_valid,
            "perspectives_passed": passed,
        })
    return results


def refusals(endpoint: Endpoint, credentials: Path) -> list:
    """Requests the endpoint must refuse: no client certificate, unknown field, match_regex."""
    results = []
    host, port = endpoint.node.openmpic
    bare = ssl.create_default_context(cafile=str(credentials / "ca.pem"))
    bare.check_hostname = False
    try:
        urllib.request.urlopen(
            urllib.request.Request(f"https://{host}:{port}/caa", data=b"{}", method="POST"),
            context=bare, timeout=10,
        )
        results.append({"name": "refuse-no-client-certificate", "ok": False, "observed": "answered"})
    except (ssl.SSLError, urllib.error.URLError, ConnectionError) as error:
        results.append({"name": "refuse-no-client-certificate", "ok": True, "observed": type(error).__name__})
    status, body = endpoint.post("caa", {"domain_or_ip_target": "signed.test", "bogus": 1})
    results.append({"name": "refuse-unknown-field", "ok": status == 400, "observed": f"{status} {body}"})
    status, body = endpoint.post("dcv", table.Case("x", "dcv", "www.signed.test", {
        **table.website("file.txt"), "match_regex": "rv-.*"}, table.PASS).body())
    results.append({"name": "refuse-match-regex", "ok": status == 400 and "match_regex" in body["detail"],
                    "observed": f"{status} {body}"})
    status, body = endpoint.post("other", {})
    results.append({"name": "unknown-path-404", "ok": status == 404, "observed": status})
    status, body = endpoint.post("caa", {"domain_or_ip_target": "x" * 70000})
    results.append({"name": "refuse-oversized-body-413", "ok": status == 413, "observed": f"{status} {body}"})
    results.append(stalled_body(endpoint))
    results.append(stalled_head(endpoint))
    results.append(idle_keep_alive(endpoint))
    return results


def idle_keep_alive(endpoint: Endpoint) -> dict:
    """A kept-alive connection that goes quiet after its answer is closed within
    limits.request_read_timeout, so idle primaries cannot pin the listener's connection slots."""
    import socket

    host, port = endpoint.node.openmpic
    body = json.dumps({"domain_or_ip_target": "signed.test"}).encode()
    with socket.create_connection((host, port), timeout=10) as raw:
        with endpoint.context.wrap_socket(raw) as tls:
            tls.sendall(b"POST /caa HTTP/1.1\r\nHost: node\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            answer = b""
            while not (b'"key_id"' in answer and answer.rstrip().endswith(b"}")):
                chunk = tls.recv(65536)
                if not chunk:
                    break
                answer += chunk
            started = time.monotonic()
            try:
                after = tls.recv(100)
            except (ConnectionError, ssl.SSLError):
                after = b""
    elapsed = time.monotonic() - started
    ok = answer.startswith(b"HTTP/1.1 200") and after == b"" and elapsed < 3
    return {"name": "idle-keep-alive-closed", "ok": ok,
            "observed": f"{answer[:15]!r}, then closed after {elapsed:.2f} s idle"}


def stalled_head(endpoint: Endpoint) -> dict:
    """Slowloris: a request head that never ends. The node closes the connection within
    limits.request_read_timeout (hyper's header read timeout) rather than keep it open."""
    import socket

    host, port = endpoint.node.openmpic
    started = time.monotonic()
    with socket.create_connection((host, port), timeout=10) as raw:
        with endpoint.context.wrap_socket(raw) as tls:
            tls.sendall(b"POST /caa HTTP/1.1\r\nHost: node\r\nX-Slow: ")
            try:
                answer = tls.recv(4096)
            except (ConnectionError, ssl.SSLError):
                answer = b""
    elapsed = time.monotonic() - started
    return {"name": "stalled-head-closed", "ok": elapsed < 3,
            "observed": f"closed after {elapsed:.2f} s ({answer[:20]!r})"}


def stalled_body(endpoint: Endpoint) -> dict:
    """A primary that sends its headers and half its body, then stalls: the node answers 408
    within limits.request_read_timeout (1 s here) instead of holding the slot."""
    import socket

    host, port = endpoint.node.openmpic
    started = time.monotonic()
    with socket.create_connection((host, port), timeout=10) as raw:
        with endpoint.context.wrap_socket(raw) as tls:
            tls.sendall(b"POST /caa HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 100\r\n\r\n{\"domain_or_ip_")
            answer = tls.recv(4096).decode(errors="replace")
    elapsed = time.monotonic() - started
    status = answer.split(" ", 2)[1] if answer.startswith("HTTP/1.1") else answer[:40]
    return {"name": "stalled-body-408", "ok": status == "408" and elapsed < 3,
            "observed": f"{status} after {elapsed:.2f} s"}


async def main() -> int:
    servers.preflight()
    work = Path(tempfile.mkdtemp(prefix="mpic-interop-"))
    credentials = work / "credentials"
    servers.run([str(servers.NODE_BIN), "certs", "dev", "--out", str(credentials)])
    knot, nginx = servers.Knot(work), servers.Nginx(work)
    nodes = [servers.Node(work, credentials, f"interop-{i}", rir)
             for i, rir in enumerate(["ARIN", "RIPE", "APNIC"], start=1)]
    started = []
    try:
        for server in [knot, nginx]:
            server.start()
            started.append(server)
        for node in nodes:
            node.start(knot, nginx)
            started.append(node)
        endpoints = [Endpoint(node, credentials) for node in nodes]
        point_open_mpic_at(knot, nginx)
        caa_checker = MpicCaaChecker(default_caa_domain_list=[servers.CA], dns_timeout=2, dns_resolution_lifetime=4)
        dcv_checker = MpicDcvChecker(http_client_timeout=5, dns_timeout=2, dns_resolution_lifetime=4)

        rows, failures = [], 0
        for case in table.CASES:
            ours = check_ours(endpoints[0], case)
            theirs, theirs_ok = None, True
            if case.openmpic is not None:
                theirs = await check_open_mpic(case, caa_checker, dcv_checker)
                wanted = ours["observed"][1] if case.openmpic == "same" else case.openmpic
                theirs_ok = theirs == wanted
            ok = ours["ok"] and theirs_ok
            failures += not ok
            rows.append({"case": case.name, "target": case.target, "expected": case.expect, **ours,
                         "open_mpic_passed": theirs, "open_mpic_ok": theirs_ok, "why": case.why})
            agree = "-" if theirs is None else ("agrees" if theirs == ours["observed"][1] else f"differs ({theirs})")
            print(f"{'ok  ' if ok else 'FAIL'} {case.name:34} {str(ours['observed']):36} "
                  f"{ours['elapsed'] * 1000:6.0f} ms  open-mpic: {agree}")
            if not ok:
                print(f"     expected {case.expect}; errors {ours.get('errors')}")
        extra = refusals(endpoints[0], credentials) + await coordinator_runs(endpoints)
        for row in extra:
            failures += not row["ok"]
            print(f"{'ok  ' if row['ok'] else 'FAIL'} {row['name']:34} {row.get('observed', row.get('perspectives_passed'))}")
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        REPORT.write_text(json.dumps({"cases": rows, "other": extra}, indent=2, default=str))
        print(f"interop: {len(rows) + len(extra) - failures}/{len(rows) + len(extra)} passed; report {REPORT}")
        return 1 if failures else 0
    finally:
        for server in reversed(started):
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
