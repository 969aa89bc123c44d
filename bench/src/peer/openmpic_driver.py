"""Open MPIC's own checkers under load, for `mpic-bench peer`.

open-mpic-core's MpicCaaChecker / MpicDcvChecker, stock, on uvloop: their dnspython resolver is
pointed at the bench's Knot server, and aiohttp's resolver (the http-01 fetch) asks that same
Knot for the name's A record and dials nginx's port. A closed loop keeps `--concurrency` checks
in flight for `--seconds` (after `--warmup` seconds not counted), every check on the next of
`--names` names. Measures this process's own CPU time (resource.getrusage), per-check latency
(p50/p99) and the checks whose verdict is not the expected pass. Prints one JSON object on
stdout; exit 2 when something it needs is missing.

mpic-bench embeds this file and runs it with the interop virtualenv's Python.
"""

import argparse
import asyncio
import base64
import hashlib
import json
import logging
import resource
import socket
import sys
import time

try:
    import aiohttp
    import aiohttp.abc
    import dns.asyncresolver
    import uvloop
    from open_mpic_core import CaaCheckRequest, DcvCheckRequest, MpicCaaChecker, MpicDcvChecker
except ImportError as error:
    print(f"openmpic driver: {error}: run `make tools` (tools/setup makes the virtualenv)", file=sys.stderr)
    sys.exit(2)


def arguments():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", choices=["caa", "dns-01", "http-01"], required=True)
    parser.add_argument("--dns-port", type=int, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--names", type=int, required=True)
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--issuer", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--key-authorization", required=True)
    parser.add_argument("--origin", required=True)
    return parser.parse_args()


class KnotResolver(aiohttp.abc.AbstractResolver):
    """aiohttp's name resolution for the http-01 fetch: the A record from Knot (as a deployed
    checker would look it up), dialled at nginx's port."""

    def __init__(self, resolver, port: int):
        self.resolver = resolver
        self.port = port

    async def resolve(self, host, port=0, family=socket.AF_INET):
        answer = await self.resolver.resolve(host, "A")
        return [
            {"hostname": host, "host": record.address, "port": self.port,
             "family": socket.AF_INET, "proto": 0, "flags": 0}
            for record in answer
        ]

    async def close(self):
        return None


def checker_for(args):
    """The check function for `args.kind`: name -> awaitable of check_passed."""
    resolver = dns.asyncresolver.get_default_resolver()
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = args.dns_port
    if args.kind == "caa":
        checker = MpicCaaChecker(default_caa_domain_list=[args.issuer], dns_timeout=2, dns_resolution_lifetime=4)

        async def check(name):
            request = CaaCheckRequest.model_validate(
                {"domain_or_ip_target": name, "caa_check_parameters": {"caa_domains": [args.issuer]}}
            )
            return (await checker.check_caa(request)).check_passed

        return check
    original = aiohttp.TCPConnector

    def connector(*positional, **keywords):
        keywords["resolver"] = KnotResolver(resolver, args.http_port)
        return original(*positional, **keywords)

    aiohttp.TCPConnector = connector
    checker = MpicDcvChecker(http_client_timeout=5, dns_timeout=2, dns_resolution_lifetime=4)
    if args.kind == "dns-01":
        digest = hashlib.sha256(args.key_authorization.encode()).digest()
        parameters = {
            "validation_method": "acme-dns-01",
            "key_authorization_hash": base64.urlsafe_b64encode(digest).decode().rstrip("="),
        }
    else:
        parameters = {
            "validation_method": "acme-http-01",
            "token": args.token,
            "key_authorization": args.key_authorization,
        }

    async def check(name):
        request = DcvCheckRequest.model_validate({"domain_or_ip_target": name, "dcv_check_parameters": parameters})
        return (await checker.check_dcv(request)).check_passed

    return check


class Phase:
    """What one phase counted."""

    def __init__(self):
        self.latencies = []
        self.wrong = 0
        self.examples = []


async def phase(check, args, state, seconds: float) -> Phase:
    counted = Phase()
    end = time.monotonic() + seconds

    async def worker():
        while time.monotonic() < end:
            n = state["next"]
            state["next"] += 1
            name = f"n{(args.offset + n) % args.names}.{args.origin.rstrip('.')}"
            started = time.perf_counter()
            try:
                passed = await check(name)
                error = None
            except Exception as failure:  # a crash of the checker is a wrong answer too
                passed, error = False, repr(failure)
            counted.latencies.append(time.perf_counter() - started)
            if passed is not True:
                counted.wrong += 1
                if len(counted.examples) < 3:
                    counted.examples.append(f"{name}: {error or 'check_passed false'}")

    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    return counted


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def quantile(sorted_values, q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


async def main(args) -> dict:
    check = checker_for(args)
    state = {"next": 0}
    warm = await phase(check, args, state, args.warmup)
    cpu_before, started = cpu_seconds(), time.monotonic()
    measured = await phase(check, args, state, args.seconds)
    elapsed, cpu = time.monotonic() - started, cpu_seconds() - cpu_before
    latencies = sorted(measured.latencies)
    return {
        "kind": args.kind,
        "loop": type(asyncio.get_running_loop()).__module__,
        "checks": len(latencies),
        "warm_checks": len(warm.latencies),
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "p50_ms": quantile(latencies, 0.50) * 1000,
        "p99_ms": quantile(latencies, 0.99) * 1000,
        "wrong": measured.wrong,
        "warm_wrong": warm.wrong,
        "wrong_examples": measured.examples + warm.examples,
    }


if __name__ == "__main__":
    logging.disable(logging.CRITICAL)  # a failed check is counted, not logged per check
    report = uvloop.run(main(arguments()))
    print(json.dumps(report))
