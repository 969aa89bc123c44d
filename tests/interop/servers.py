"""Real servers for the interop suite, all on 127.0.0.1: Knot DNS (signing the zones itself),
nginx (http-01, website change, redirects, and a TLS-ALPN-01 responder in its stream module),
and mpic-node processes with the Open MPIC listener on.

Nothing here listens anywhere but loopback, and every wait has a timeout.
"""

import base64
import hashlib
import shutil
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NODE_BIN = ROOT / "target" / "debug" / "mpic-node"

# What the zones and web server publish (the case table in cases.py refers to these).
CA = "ca.test"
ACCOUNT = "https://ca.test/acct/1"
RANDOM_VALUE = "rv-4f1c2d9e8b7a6c5d4e3f"
TOKEN = "tok-interop-0123456789abcdef"
THUMBPRINT = "thumb-0123456789abcdefghijklmnopqrstuv"
KEY_AUTHORIZATION = f"{TOKEN}.{THUMBPRINT}"
DNS01_DIGEST = base64.urlsafe_b64encode(hashlib.sha256(KEY_AUTHORIZATION.encode()).digest()).decode().rstrip("=")
TLS_ALPN_DIGEST_HEX = hashlib.sha256(KEY_AUTHORIZATION.encode()).hexdigest()
TLS_ALPN_NAME = "alpn.signed.test"


# What the suite runs, and the Debian package that has it (`tools/setup` installs them).
REQUIRED = {
    "knotd": "knot",
    "keymgr": "knot",
    "kdig": "knot-dnsutils",
    "nginx": "nginx-light",
    "/usr/lib/nginx/modules/ngx_stream_module.so": "libnginx-mod-stream",
    "openssl": "openssl",
}


def preflight() -> None:
    """Fails at once, naming each missing tool and its package, before any server starts."""
    missing = [
        f"{what} ({package})"
        for what, package in REQUIRED.items()
        if not (Path(what).exists() if what.startswith("/") else shutil.which(what))
    ]
    if missing:
        raise SystemExit(f"interop: missing {', '.join(missing)}: run `make tools` (tools/setup)")


def free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1 (at the time of asking)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                    udp.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free loopback port")


def wait_for_port(port: int, what: str, process=None, logs=(), timeout: float = 15.0) -> None:
    """Waits until something accepts TCP on 127.0.0.1:`port`. When it does not (or `process`
    exits first), the error carries the server's own logs, so its reason is in the failure."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"{what} exited with status {process.returncode} before listening on "
                f"127.0.0.1:{port}{log_tail(logs)}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout}s{log_tail(logs)}")


def log_tail(logs, lines: int = 20) -> str:
    """The last `lines` lines of each log file that exists and is not empty, for an error."""
    parts = []
    for path in logs:
        try:
            text = Path(path).read_text(errors="replace").strip()
        except OSError:
            continue
        if text:
            parts.append(f"\n--- {path} ---\n" + "\n".join(text.splitlines()[-lines:]))
    return "".join(parts) if parts else " (the server logged nothing)"


def run(args, **kwargs) -> str:
    result = subprocess.run(args, capture_output=True, text=True, timeout=60, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))} failed: {result.stderr.strip()}")
    return result.stdout


# --- Knot DNS ---------------------------------------------------------------------------------

SIGNED_ZONES = ["test.", "signed.test.", "broken.test."]
ALL_ZONES = SIGNED_ZONES + ["plain.test."]


def zone_text(origin: str, body: str) -> str:
    return (
        f"$ORIGIN {origin}\n$TTL 60\n"
        f"@ SOA ns.test. hostmaster.test. 1 3600 600 86400 60\n@ NS ns.test.\n{body}\n"
    )


def child_zones() -> dict:
    # Edge cases: CAA climb, issuewild, critical unknown tag, accounturi/validationmethods
    # (RFC 8657), CNAME from a signed into an unsigned zone, TXT split into several strings,
    # records spread over prefixes.
    signed = f"""
@ CAA 0 issue "{CA}"
@ CAA 0 issuewild ";"
acct CAA 0 issue "{CA}; accounturi={ACCOUNT}"
@ A 127.0.0.1
www A 127.0.0.1
alpn A 127.0.0.1
deny CAA 0 issue "other.example"
crit CAA 128 tbs "unknown critical tag"
crit CAA 0 issue "{CA}"
methods CAA 0 issue "{CA}; validationmethods=http-01"
_acme-challenge TXT "{DNS01_DIGEST}"
_acme-challenge.www TXT "not-the-digest"
_dc TXT "prefix {RANDOM_VALUE} suffix"
split TXT "rv-4f1c2d9e" "8b7a6c5d4e3f"
upper TXT "{RANDOM_VALUE.upper()}"
cname-rv CNAME {RANDOM_VALUE}.plain.test.
_validation-persist TXT "{CA}; accounturi={ACCOUNT}"
_validation-contactemail TXT "admin@signed.test"
alias CNAME target.plain.test.
"""
    plain = f"""
@ CAA 0 issue "{CA}"
target A 127.0.0.1
target TXT "{RANDOM_VALUE}"
deep.a.b A 127.0.0.1
_acme-challenge.deep.a.b TXT "{DNS01_DIGEST}"
{RANDOM_VALUE} A 127.0.0.1
"""
    broken = f"""
@ CAA 0 issue "{CA}"
_acme-challenge TXT "{DNS01_DIGEST}"
"""
    return {"signed.test.": signed, "plain.test.": plain, "broken.test.": broken}


class Knot:
    """knotd serving test. (signed), its signed child signed.test., an unsigned child
    plain.test., and broken.test. whose DS in the parent does not match its key (bogus)."""

    def __init__(self, work: Path):
        self.work = work / "knot"
        self.port = free_port()
        self.conf = self.work / "knot.conf"
        self.process = None

    def keymgr(self, zone: str, *args: str) -> str:
        return run(["keymgr", "-c", str(self.conf), zone, *args])

    def start(self) -> None:
        for sub in ("zones", "db", "run"):
            (self.work / sub).mkdir(parents=True, exist_ok=True)
        zones_conf = "".join(
            f"  - domain: {zone}\n"
            + ("    dnssec-signing: on\n    dnssec-policy: manual\n" if zone in SIGNED_ZONES else "")
            for zone in ALL_ZONES
        )
        self.conf.write_text(
            f"""server:
    listen: 127.0.0.1@{self.port}
    rundir: {self.work / 'run'}
database:
    storage: {self.work / 'db'}
log:
  - target: stderr
    any: warning
policy:
  - id: manual
    manual: on
template:
  - id: default
    storage: {self.work / 'zones'}
    file: "%s.zone"
    zonefile-sync: -1
zone:
{zones_conf}"""
        )
        # Keys first (ECDSA P-256, KSK + ZSK), so the parent's DS records can be written.
        for zone in SIGNED_ZONES:
            self.keymgr(zone, "generate", "algorithm=ecdsap256sha256", "ksk=yes", "zsk=no")
            self.keymgr(zone, "generate", "algorithm=ecdsap256sha256", "ksk=no", "zsk=yes")
        ds = {zone: self.ds(zone) for zone in SIGNED_ZONES}
        # broken.test.: its real DS with the digest's last hex digit changed.
        broken_ds = ds["broken.test."][:-1] + ("0" if ds["broken.test."][-1] != "0" else "1")
        parent = "\n".join(
            [
                "ns A 127.0.0.1",
                "signed NS ns.test.",
                f"signed DS {ds['signed.test.']}",
                "plain NS ns.test.",
                "broken NS ns.test.",
                f"broken DS {broken_ds}",
            ]
        )
        zones = child_zones()
        (self.work / "zones" / "test.zone").write_text(zone_text("test.", parent))
        for origin, body in zones.items():
            (self.work / "zones" / f"{origin.rstrip('.')}.zone").write_text(zone_text(origin, body))
        (self.work / "anchor.ds").write_text(f"test. 3600 IN DS {ds['test.']}\n")
        self.process = subprocess.Popen(
            ["knotd", "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.work / "knotd.log", "w"),
        )
        wait_for_port(self.port, "knotd", self.process, [self.work / "knotd.log"])
        # Signing happens right after load: wait until every signed zone answers its DNSKEY.
        deadline = time.monotonic() + 15
        for zone in SIGNED_ZONES:
            while True:
                out = run(["kdig", f"@127.0.0.1", "-p", str(self.port), "+dnssec", "+short", zone, "DNSKEY"])
                if out.strip():
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"knotd did not sign {zone}: {(self.work / 'knotd.log').read_text()}")
                time.sleep(0.2)

    def ds(self, zone: str) -> str:
        """The zone's DS rdata with SHA-256 (`<tag> 13 2 <hex>`)."""
        for line in self.keymgr(zone, "ds").splitlines():
            parts = line.split()
            if "DS" in parts:
                rdata = parts[parts.index("DS") + 1 :]
                if rdata[2] == "2":
                    return " ".join(rdata)
        raise RuntimeError(f"keymgr printed no SHA-256 DS for {zone}")

    @property
    def anchor(self) -> Path:
        return self.work / "anchor.ds"

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=10)


# --- nginx ------------------------------------------------------------------------------------


class Nginx:
    """nginx on 127.0.0.1: HTTP (challenge files, redirects) and a TLS-ALPN-01 responder (the
    stream module with `ssl_alpn acme-tls/1` and a challenge certificate made by openssl)."""

    def __init__(self, work: Path):
        self.work = work / "nginx"
        self.http_port = free_port()
        self.tls_port = free_port()
        self.process = None

    def challenge_certificate(self) -> None:
        der = "DER:04:20:" + ":".join(
            TLS_ALPN_DIGEST_HEX[i : i + 2] for i in range(0, len(TLS_ALPN_DIGEST_HEX), 2)
        )
        run(
            [
                "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-days", "2", "-subj", f"/CN={TLS_ALPN_NAME}",
                "-keyout", str(self.work / "challenge.key"), "-out", str(self.work / "challenge.pem"),
                "-addext", f"subjectAltName=DNS:{TLS_ALPN_NAME}",
                "-addext", f"1.3.6.1.5.5.7.1.31=critical,{der}",
            ]
        )

    def start(self) -> None:
        (self.work / "logs").mkdir(parents=True, exist_ok=True)
        self.challenge_certificate()
        acme = "/.well-known/acme-challenge"
        pki = "/.well-known/pki-validation"
        self.conf = self.work / "nginx.conf"
        self.conf.write_text(
            f"""load_module /usr/lib/nginx/modules/ngx_stream_module.so;
daemon off;
master_process off;
worker_processes 1;
pid {self.work / 'nginx.pid'};
error_log {self.work / 'logs' / 'error.log'} warn;
events {{ worker_connections 256; }}
http {{
    access_log {self.work / 'logs' / 'access.log'};
    client_body_temp_path {self.work};
    proxy_temp_path {self.work};
    fastcgi_temp_path {self.work};
    uwsgi_temp_path {self.work};
    scgi_temp_path {self.work};
    default_type text/plain;
    server {{
        listen 127.0.0.1:{self.http_port};
        server_name _;
        port_in_redirect off;
        location = {acme}/{TOKEN} {{ return 200 "{KEY_AUTHORIZATION}\\n"; }}
        location = {acme}/wrong {{ return 200 "{TOKEN}.not-the-thumbprint"; }}
        location = {acme}/hop1 {{ return 301 {acme}/hop1-b; }}
        location = {acme}/hop1-b {{ return 302 http://www.signed.test{acme}/hop1-c; }}
        location = {acme}/hop1-c {{ return 200 "hop1.{THUMBPRINT}"; }}
        location = {acme}/to-8080 {{ return 301 http://www.signed.test:8080{acme}/{TOKEN}; }}
        location = {acme}/to-ftp {{ return 301 ftp://www.signed.test{acme}/{TOKEN}; }}
        location = {pki}/file.txt {{ return 200 "website change v2 {RANDOM_VALUE} ok"; }}
        location = {pki}/{RANDOM_VALUE}.txt {{ return 200 "{RANDOM_VALUE}"; }}
        location / {{ return 404; }}
    }}
}}
stream {{
    server {{
        listen 127.0.0.1:{self.tls_port} ssl;
        ssl_certificate {self.work / 'challenge.pem'};
        ssl_certificate_key {self.work / 'challenge.key'};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_alpn acme-tls/1;
        return "";
    }}
}}
"""
        )
        self.process = subprocess.Popen(
            ["nginx", "-p", str(self.work), "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.work / "logs" / "stderr.log", "w"),
        )
        logs = [self.work / "logs" / "stderr.log", self.work / "logs" / "error.log"]
        wait_for_port(self.http_port, "nginx (http)", self.process, logs)
        wait_for_port(self.tls_port, "nginx (stream)", self.process, logs)

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=10)


# --- mpic-node --------------------------------------------------------------------------------


class Node:
    """One mpic-node process: forwarding to Knot, validating DNSSEC from the test. anchor,
    HTTP and TLS-ALPN checks dialled at nginx's ports, the Open MPIC listener on."""

    def __init__(self, work: Path, credentials: Path, ident: str, rir: str):
        self.dir = work / ident
        self.credentials = credentials
        self.ident = ident
        self.rir = rir
        self.process = None
        self.openmpic = None
        self.public_key = None

    def start(self, knot: Knot, nginx: Nginx) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        key = self.dir / "signing.key"
        out = run([str(NODE_BIN), "keygen", "--out", str(key)])
        self.public_key = next(
            line.split('"')[1] for line in out.splitlines() if line.startswith("public_key")
        )
        c = self.credentials
        config = self.dir / "node.toml"
        config.write_text(
            f"""[perspective]
id = "{self.ident}"
rir = "{self.rir}"
location = "loopback"
[quic]
listen = ["127.0.0.1:0"]
certificate = "{c / 'node.pem'}"
private_key = "{c / 'node.key'}"
client_ca = "{c / 'ca.pem'}"
[signing]
key = "{key}"
[metrics]
listen = "127.0.0.1:0"
[limits]
request_read_timeout = "1s"
max_request_bytes = 65536
[logging]
level = "warn"
[state]
directory = "{self.dir}"
[audit]
path = "{self.dir / 'audit.jsonl'}"
[dns]
mode = "forward"
upstreams = ["127.0.0.1:{knot.port}"]
trust_anchor = "{knot.anchor}"
dnssec = "validate"
query_timeout = "1s"
use_ipv6 = false
[http]
use_ipv6 = false
hop_timeout = "3s"
[dangerous]
allow_private_targets = true
http_port = {nginx.http_port}
https_port = {nginx.tls_port}
[openmpic]
listen = ["127.0.0.1:0"]
caa_domains = ["{CA}"]
"""
        )
        self.process = subprocess.Popen(
            [str(NODE_BIN), "run", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=open(self.dir / "stderr.log", "w"),
            text=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if line.startswith("ready "):
                field = next(p for p in line.split() if p.startswith("openmpic="))
                host, port = field.split("=", 1)[1].split(",")[0].rsplit(":", 1)
                self.openmpic = (host, int(port))
                return
            if not line and self.process.poll() is not None:
                break
        raise RuntimeError(f"node {self.ident} did not start: {(self.dir / 'stderr.log').read_text()}")

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
