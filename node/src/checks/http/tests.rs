//! Table tests of the pure HTTP-method rules.

use super::decide::*;
use crate::checks::dcv::request::UrlScheme;
use crate::http::fetch::Fetched;

const TOKEN: &str = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA";
const KEY_AUTH: &str =
    "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.nP1qzpXGymHBrUEepNY9HCsQk7K8KhOypzEt62jcerQ";

fn fetched(status: u16, body: &str) -> Fetched {
    Fetched {
        status,
        body: body.as_bytes().to_vec(),
        truncated: false,
    }
}

#[test]
fn http01_url_is_port_80_under_acme_challenge() {
    let url = http01_url("Example.COM.", TOKEN, KEY_AUTH).unwrap();
    assert_eq!(
        url.as_str(),
        format!("http://example.com/.well-known/acme-challenge/{TOKEN}")
    );
    let v6 = http01_url("2001:db8::1", TOKEN, KEY_AUTH).unwrap();
    assert_eq!(v6.host_str(), Some("[2001:db8::1]"));
    let v4 = http01_url("192.0.2.7", TOKEN, KEY_AUTH).unwrap();
    assert_eq!(v4.host_str(), Some("192.0.2.7"));
}

#[test]
fn http01_url_refuses_bad_parameters() {
    // Missing fields are refused when the wire check is decoded (`dcv::request`).
    let cases: [(&str, &str, &str, &str); 5] = [
        ("*.example.com", TOKEN, KEY_AUTH, "wildcard"),
        ("example.com", "../etc", "../etc.x", "base64url"),
        ("example.com", "a/b", "a/b.x", "base64url"),
        (
            "example.com",
            TOKEN,
            "other.thumb",
            "key_authorization must be",
        ),
        ("exa mple.com", TOKEN, KEY_AUTH, "not a host name"),
    ];
    for (identifier, token, key_auth, expected) in cases {
        let error = http01_url(identifier, token, key_auth)
            .unwrap_err()
            .to_string();
        assert!(error.contains(expected), "{identifier} {token:?}: {error}");
    }
}

#[test]
fn http01_ignores_whitespace_at_the_end_only() {
    let cases = [
        (200, KEY_AUTH.to_owned(), true),
        (200, format!("{KEY_AUTH}\n"), true),
        (200, format!("{KEY_AUTH} \r\n\t"), true),
        (204, KEY_AUTH.to_owned(), true),
        (200, format!(" {KEY_AUTH}"), false),
        (200, format!("\n{KEY_AUTH}"), false),
        (200, format!("{KEY_AUTH}x"), false),
        (200, KEY_AUTH[..KEY_AUTH.len() - 1].to_owned(), false),
        (200, String::new(), false),
        (404, KEY_AUTH.to_owned(), false),
        (302, KEY_AUTH.to_owned(), false),
    ];
    for (status, body, pass) in cases {
        let verdict = decide_http01(&fetched(status, &body), KEY_AUTH);
        assert_eq!(verdict.is_ok(), pass, "{status} {body:?}: {verdict:?}");
    }
}

#[test]
fn http01_failures_quote_status_and_body() {
    let error = decide_http01(&fetched(404, "<h1>Not Found</h1>"), KEY_AUTH)
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "HTTP status 404 (a 2xx is required); body \"<h1>Not Found</h1>\""
    );
    let long = "x".repeat(100);
    let error = decide_http01(&fetched(200, &long), KEY_AUTH)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(&format!("\"{}\"…", "x".repeat(64))),
        "{error}"
    );
    let mut truncated = fetched(200, KEY_AUTH);
    truncated.truncated = true;
    assert!(
        decide_http01(&truncated, KEY_AUTH)
            .unwrap_err()
            .to_string()
            .contains("longer")
    );
}

#[test]
fn website_change_value_is_contained_in_the_body() {
    let value = "rv-7f3a9c";
    let cases = [
        (200, "rv-7f3a9c", true),
        (200, "some text\nrv-7f3a9c\nmore", true),
        (200, "  rv-7f3a9c  ", true),
        (200, "rv-7f3a9", false),
        (200, "RV-7F3A9C", false),
        (403, "rv-7f3a9c", false),
        (301, "rv-7f3a9c", false),
        (200, "", false),
    ];
    for (status, body, pass) in cases {
        let verdict = decide_website_change(&fetched(status, body), value);
        assert_eq!(verdict.is_ok(), pass, "{status} {body:?}: {verdict:?}");
    }
}

#[test]
fn website_change_url_rules() {
    let url = website_change_url("example.com", "mpic.txt", UrlScheme::Http, "rv-1234").unwrap();
    assert_eq!(
        url.as_str(),
        "http://example.com/.well-known/pki-validation/mpic.txt"
    );
    let url = website_change_url("example.com", "f.txt", UrlScheme::Https, "rv-1234").unwrap();
    assert_eq!(url.scheme(), "https");
    // Missing fields and a scheme other than http/https are refused when the wire check is
    // decoded (`dcv::request`).
    let cases: [(&str, &str, &str, &str); 4] = [
        (
            "example.com",
            "rv-1234.txt",
            "rv-1234",
            "appears in the request URL",
        ),
        ("example.com", "a/b", "v", "one path segment"),
        ("example.com", "..", "v", "one path segment"),
        ("*.example.com", "f", "v", "wildcard"),
    ];
    for (identifier, file, expected, message) in cases {
        let error = website_change_url(identifier, file, UrlScheme::Http, expected)
            .unwrap_err()
            .to_string();
        assert!(error.contains(message), "{file:?}: {error}");
    }
}

#[test]
fn typed_errors_render_the_details_the_checks_always_wrote() {
    let body = |text: &str| fetched(200, text);
    let mut truncated = body("abc");
    truncated.truncated = true;
    let cases: [(String, &str); 8] = [
        (
            http01_url("*.a.test", TOKEN, KEY_AUTH)
                .unwrap_err()
                .to_string(),
            "\"*.a.test\" is a wildcard name: HTTP-based methods cannot validate wildcards \
             (BR 3.2.2.4.18/.19, RFC 8555 §7.1.3); use a DNS method",
        ),
        (
            http01_url("a.test", "a/b", "a/b.x")
                .unwrap_err()
                .to_string(),
            "token must be 1-255 base64url characters (RFC 8555 §8.3)",
        ),
        (
            check_key_authorization(TOKEN, "x").unwrap_err().to_string(),
            "key_authorization must be `<token>.<base64url account key thumbprint>` (RFC 8555 \
             §8.1)",
        ),
        (
            website_change_url("a.test", "a/b", UrlScheme::Http, "v")
                .unwrap_err()
                .to_string(),
            "file name must be 1-255 characters of A-Z a-z 0-9 . _ - (one path segment)",
        ),
        (
            website_change_url("a.test", "f", UrlScheme::Http, "")
                .unwrap_err()
                .to_string(),
            "expected must be 1-1024 bytes",
        ),
        (
            website_change_url("a.test", "rv-1.txt", UrlScheme::Http, "rv-1")
                .unwrap_err()
                .to_string(),
            "the Random Value or Request Token appears in the request URL, which BR 3.2.2.4.18 \
             forbids: put it in the file's content only",
        ),
        (
            decide_website_change(&truncated, "zz")
                .unwrap_err()
                .to_string(),
            "the expected value is not in the file in the first 3 bytes: got \"abc\" (3 bytes)",
        ),
        (
            decide_http01(&body("x"), "k").unwrap_err().to_string(),
            "the body is not the key authorization: got \"x\" (1 bytes), expected \"k\"",
        ),
    ];
    for (got, want) in cases {
        assert_eq!(got, want);
    }
}
