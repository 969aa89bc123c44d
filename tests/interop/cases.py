"""The expected-verdict table of the interop suite.

Each case is one Open MPIC remote-perspective request (what the coordinator would POST) and the
verdict this node must give: (check_completed, check_passed, our problem kind or None).

`openmpic` is what Open MPIC's own checkers (open-mpic-core's MpicCaaChecker/MpicDcvChecker,
pointed at the same Knot server and nginx) must answer for check_passed: "same" when they agree
with us, a bool plus the standard that decides when they do not, or None when their checker
cannot be pointed at the fixture (TLS-ALPN dials port 443 with the system resolver).
"""

from dataclasses import dataclass, field

from servers import (
    ACCOUNT,
    CA,
    DNS01_DIGEST,
    KEY_AUTHORIZATION,
    RANDOM_VALUE,
    TLS_ALPN_DIGEST_HEX,
    THUMBPRINT,
    TLS_ALPN_NAME,
    TOKEN,
)


@dataclass
class Case:
    name: str
    endpoint: str  # "caa" or "dcv"
    target: str
    parameters: dict
    expect: tuple  # (check_completed, check_passed, problem kind or None)
    openmpic: object = "same"
    why: str = ""
    extra: dict = field(default_factory=dict)

    def body(self) -> dict:
        body = {"domain_or_ip_target": self.target, "trace_identifier": f"interop-{self.name}"}
        key = "caa_check_parameters" if self.endpoint == "caa" else "dcv_check_parameters"
        body[key] = self.parameters
        return body


def caa(name, target, expect, **kw):
    return Case(name, "caa", target, {"caa_domains": [CA]}, expect, **kw)


def dcv(name, target, parameters, expect, **kw):
    return Case(name, "dcv", target, parameters, expect, **kw)


PASS = (True, True, None)
CAA_DENIES = (True, False, "caa")
NOT_FOUND = (True, False, "unauthorized")
BOGUS = (False, False, "dnssec")


def dns01(digest=DNS01_DIGEST):
    return {"validation_method": "acme-dns-01", "key_authorization_hash": digest}


def dns_change(value=RANDOM_VALUE, record_type="TXT", prefix=None, exact=False, case=True):
    parameters = {
        "validation_method": "dns-change",
        "challenge_value": value,
        "dns_record_type": record_type,
        "require_exact_match": exact,
        "require_exact_case": case,
    }
    if prefix:
        parameters["dns_name_prefix"] = prefix
    return parameters


def http01(token=TOKEN, key_authorization=None):
    key_authorization = key_authorization or f"{token}.{THUMBPRINT}"
    return {"validation_method": "acme-http-01", "token": token, "key_authorization": key_authorization}


def website(path, value=RANDOM_VALUE):
    return {"validation_method": "website-change", "challenge_value": value, "http_token_path": path}


def tls_alpn(digest_hex=TLS_ALPN_DIGEST_HEX):
    return {"validation_method": "acme-tls-alpn-01", "key_authorization_hash": digest_hex}


BOGUS_WHY = (
    "broken.test's DS in test. does not match its key, so every answer below it is bogus. "
    "Since 2026-03-15 CAA and DCV lookups MUST be DNSSEC-validated to the root (BR 3.2.2.8.1, "
    "3.2.2.4; SC-085) and a bogus answer is a lookup failure; Open MPIC's dnspython resolver "
    "does not validate, so it passes."
)

CASES = [
    # --- CAA (RFC 8659, RFC 8657, BR 3.2.2.8) ---
    caa("caa-apex-signed", "signed.test", PASS),
    caa("caa-climb", "www.signed.test", PASS),
    caa("caa-nxdomain-climb", "nothing-here.signed.test", PASS),
    caa("caa-other-ca", "deny.signed.test", CAA_DENIES),
    caa(
        "caa-critical-unknown-tag",
        "crit.signed.test",
        CAA_DENIES,
        why="RFC 8659 §4.5: an unknown tag with the critical flag forbids issuance.",
    ),
    caa("caa-issuewild-none", "*.signed.test", CAA_DENIES),
    caa(
        "caa-accounturi-no-account",
        "acct.signed.test",
        CAA_DENIES,
        openmpic=True,
        why="RFC 8657 §3: with accounturi present the CA may issue only for that account. An Open "
        "MPIC request carries no account, so the perspective cannot confirm it and must not "
        "corroborate; Open MPIC ignores the parameter and passes.",
    ),
    caa(
        "caa-validationmethods-no-method",
        "methods.signed.test",
        CAA_DENIES,
        openmpic=True,
        why="RFC 8657 §4: validationmethods limits issuance to the listed methods; the request "
        "names none, so it cannot be shown to be allowed. Open MPIC ignores the parameter.",
    ),
    caa("caa-cname-into-unsigned", "alias.signed.test", PASS),
    caa("caa-unsigned-zone", "plain.test", PASS),
    caa("caa-unsigned-deep-climb", "deep.a.b.plain.test", PASS),
    caa("caa-bogus-zone", "broken.test", BOGUS, openmpic=True, why=BOGUS_WHY),
    # --- DNS-based DCV ---
    dcv("dns01-signed", "signed.test", dns01(), PASS),
    dcv("dns01-wrong-value", "www.signed.test", dns01(), NOT_FOUND),
    dcv("dns01-unsigned", "deep.a.b.plain.test", dns01(), PASS),
    dcv("dns01-bogus", "broken.test", dns01(), BOGUS, openmpic=True, why=BOGUS_WHY),
    dcv("dns-change-prefix-substring", "signed.test", dns_change(prefix="_dc"), PASS),
    dcv("dns-change-prefix-exact", "signed.test", dns_change(prefix="_dc", exact=True), NOT_FOUND),
    dcv("dns-change-split-txt-strings", "split.signed.test", dns_change(), PASS),
    dcv("dns-change-case-sensitive", "upper.signed.test", dns_change(value=RANDOM_VALUE), NOT_FOUND),
    dcv("dns-change-case-insensitive", "upper.signed.test", dns_change(case=False), PASS),
    dcv("dns-change-cname", "cname-rv.signed.test", dns_change(record_type="CNAME"), PASS),
    dcv(
        "dns-change-txt-via-cname",
        "alias.signed.test",
        dns_change(),
        PASS,
        openmpic=False,
        why="alias.signed.test is a CNAME into another zone (plain.test.). Knot, being "
        "authoritative, answers with the CNAME alone; our node follows it as a resolver must "
        "(RFC 1034 §5.3.3; BR 3.2.2.4.7 counts a CNAME target as an ADN). Open MPIC's stub "
        "resolver leaves the chase to a recursive server, so against this authoritative server "
        "it sees no TXT. Behind a recursive resolver both pass.",
    ),
    dcv("dns-change-nxdomain", "nothing-here.signed.test", dns_change(), NOT_FOUND),
    dcv(
        "dns-persist",
        "signed.test",
        {
            "validation_method": "dns-persistent",
            "issuer_domain_names": [CA],
            "expected_account_uri": ACCOUNT,
        },
        PASS,
    ),
    dcv(
        "contact-email-txt",
        "signed.test",
        {"validation_method": "contact-email-txt", "challenge_value": "admin@signed.test", "dns_record_type": "TXT"},
        PASS,
    ),
    # --- HTTP-based DCV (nginx) ---
    dcv("http01-pass", "www.signed.test", http01(), PASS),
    dcv("http01-wrong-body", "www.signed.test", http01(token="wrong"), NOT_FOUND),
    dcv("http01-404", "www.signed.test", http01(token="missing"), NOT_FOUND),
    dcv(
        "http01-key-authorization-for-another-token",
        "www.signed.test",
        http01(token="wrong", key_authorization=KEY_AUTHORIZATION),
        (True, False, "malformed"),
        why="RFC 8555 §8.1: a key authorization is `token.thumbprint`; one for another token is "
        "refused before any fetch. Open MPIC fetches and compares the body (no match either).",
    ),
    dcv("http01-two-redirects", "www.signed.test", http01(token="hop1"), PASS, openmpic=None,
        why="Open MPIC's aiohttp client follows the redirect to www.signed.test:80 itself."),
    dcv("http01-redirect-to-8080", "www.signed.test", http01(token="to-8080"), (True, False, "redirect"),
        openmpic=None, why="BR 3.2.2.4.19: redirects only to ports 80/443."),
    dcv("http01-redirect-to-ftp", "www.signed.test", http01(token="to-ftp"), (True, False, "redirect"),
        openmpic=None, why="BR 3.2.2.4.19: redirects only to http/https."),
    dcv("website-change-pass", "www.signed.test", website("file.txt"), PASS),
    dcv(
        "website-change-value-in-url",
        "www.signed.test",
        website(f"{RANDOM_VALUE}.txt"),
        (True, False, "malformed"),
        openmpic=True,
        why="BR 3.2.2.4.18: the Random Value must not appear in the request (URL); Open MPIC "
        "fetches it and finds it in the body.",
    ),
    # --- TLS-ALPN-01 (nginx stream, ssl_alpn acme-tls/1) ---
    dcv("tls-alpn-pass", TLS_ALPN_NAME, tls_alpn(), PASS, openmpic=None),
    dcv("tls-alpn-wrong-digest", TLS_ALPN_NAME, tls_alpn("00" * 32), NOT_FOUND, openmpic=None),
    dcv("tls-alpn-san-mismatch", "www.signed.test", tls_alpn(), NOT_FOUND, openmpic=None,
        why="RFC 8737 §3: the certificate's only SAN must be the identifier."),
    # --- IP Address (BR 3.2.2.4.8; retired 2026-03-15, run for corroboration and audits) ---
    dcv(
        "ip-address-pass",
        "signed.test",
        {"validation_method": "ip-address", "challenge_value": "127.0.0.1", "dns_record_type": "A"},
        PASS,
    ),
    dcv(
        "ip-address-other-address",
        "signed.test",
        {"validation_method": "ip-address", "challenge_value": "127.0.0.2", "dns_record_type": "A"},
        NOT_FOUND,
    ),
]
