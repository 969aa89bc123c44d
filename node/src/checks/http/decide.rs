//! The pure half of the HTTP-based methods: build the request URL from the check's parameters
//! (refusing what the standards forbid) and decide on what came back.
//!
//! - ACME http-01 (RFC 8555 §8.3, BR 3.2.2.4.19): `http://<identifier>/.well-known/acme-challenge/
//!   <token>`; a 2xx whose body equals the key authorization once whitespace at the **end** is
//!   ignored (Open MPIC strips both ends; RFC 8555 says the end only, which we follow).
//! - Website change v2 (BR 3.2.2.4.18): `http(s)://<identifier>/.well-known/pki-validation/<file>`;
//!   a 2xx whose body contains the Random Value or Request Token, which must not appear in the
//!   URL. Neither method is suitable for wildcard names (BR 3.2.2.4.18/.19).

use std::net::IpAddr;

use url::Url;

use crate::http::fetch::Fetched;

/// Longest token or file name accepted, in bytes.
pub const MAX_TOKEN_LEN: usize = 255;
/// Longest key authorization or expected value accepted, in bytes.
pub const MAX_VALUE_LEN: usize = 1024;
/// Bytes of a wrong body quoted in a problem detail.
pub const QUOTED_BODY_BYTES: usize = 64;

fn is_base64url(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The identifier as a URL host: a lower-case name without the trailing dot, or an IP literal.
fn host(identifier: &str) -> Result<String, String> {
    if identifier.starts_with("*.") {
        return Err(format!(
            "{identifier:?} is a wildcard name: HTTP-based methods cannot validate wildcards \
             (BR 3.2.2.4.18/.19, RFC 8555 §7.1.3); use a DNS method"
        ));
    }
    if let Ok(ip) = identifier.parse::<IpAddr>() {
        return Ok(match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        });
    }
    let name = identifier.trim_end_matches('.').to_ascii_lowercase();
    let labels_ok = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !labels_ok {
        return Err(format!("identifier {identifier:?} is not a host name"));
    }
    Ok(name)
}

fn parse(text: &str) -> Result<Url, String> {
    Url::parse(text).map_err(|error| format!("cannot build the URL {text:?}: {error}"))
}

/// The http-01 URL, after checking the token and the key authorization's form.
pub fn http01_url(
    identifier: &str,
    token: Option<&str>,
    key_authorization: Option<&str>,
) -> Result<Url, String> {
    let token = token.ok_or("acme-http-01 needs `token`")?;
    let key_authorization = key_authorization.ok_or("acme-http-01 needs `key_authorization`")?;
    if token.len() > MAX_TOKEN_LEN || !is_base64url(token) {
        return Err(format!(
            "token must be 1-{MAX_TOKEN_LEN} base64url characters (RFC 8555 §8.3)"
        ));
    }
    check_key_authorization(token, key_authorization)?;
    parse(&format!(
        "http://{}/.well-known/acme-challenge/{token}",
        host(identifier)?
    ))
}

/// Checks that `key_authorization` is `token.thumbprint` (RFC 8555 §8.1).
pub fn check_key_authorization(token: &str, key_authorization: &str) -> Result<(), String> {
    let well_formed = key_authorization.len() <= MAX_VALUE_LEN
        && key_authorization
            .strip_prefix(token)
            .and_then(|rest| rest.strip_prefix('.'))
            .is_some_and(is_base64url);
    if well_formed {
        Ok(())
    } else {
        Err(
            "key_authorization must be `<token>.<base64url account key thumbprint>` \
             (RFC 8555 §8.1)"
                .into(),
        )
    }
}

/// The website-change URL, after checking the file name, the scheme and that the value is not
/// in the URL.
pub fn website_change_url(
    identifier: &str,
    file: Option<&str>,
    scheme: Option<&str>,
    expected: Option<&str>,
) -> Result<Url, String> {
    let file = file.ok_or("website-change needs `token` (the file name)")?;
    let expected = expected.ok_or("website-change needs `expected` (Random Value or token)")?;
    let scheme = scheme.unwrap_or("http");
    if !matches!(scheme, "http" | "https") {
        return Err(format!(
            "url_scheme {scheme:?}: website-change uses http or https (BR 3.2.2.4.18)"
        ));
    }
    let file_ok = file.len() <= MAX_TOKEN_LEN
        && !file.is_empty()
        && file != "."
        && file != ".."
        && file
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !file_ok {
        return Err(format!(
            "file name must be 1-{MAX_TOKEN_LEN} characters of A-Z a-z 0-9 . _ - (one path segment)"
        ));
    }
    if expected.is_empty() || expected.len() > MAX_VALUE_LEN {
        return Err(format!("expected must be 1-{MAX_VALUE_LEN} bytes"));
    }
    let url = parse(&format!(
        "{scheme}://{}/.well-known/pki-validation/{file}",
        host(identifier)?
    ))?;
    if url.as_str().contains(expected) {
        return Err(
            "the Random Value or Request Token appears in the request URL, which BR 3.2.2.4.18 \
             forbids: put it in the file's content only"
                .into(),
        );
    }
    Ok(url)
}

fn quote(body: &[u8]) -> String {
    let shown = &body[..body.len().min(QUOTED_BODY_BYTES)];
    let mut text = format!("{:?}", String::from_utf8_lossy(shown));
    if body.len() > QUOTED_BODY_BYTES {
        text.push('…');
    }
    text
}

fn success_status(fetched: &Fetched) -> Result<(), String> {
    if (200..300).contains(&fetched.status) {
        Ok(())
    } else {
        Err(format!(
            "HTTP status {} (a 2xx is required); body {}",
            fetched.status,
            quote(&fetched.body)
        ))
    }
}

/// http-01: 2xx and the body equals the key authorization once trailing whitespace is ignored.
pub fn decide_http01(fetched: &Fetched, key_authorization: &str) -> Result<(), String> {
    success_status(fetched)?;
    if fetched.truncated {
        return Err(format!(
            "the body is longer than the {} bytes read; a key authorization is far shorter",
            fetched.body.len()
        ));
    }
    let end = fetched
        .body
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    if &fetched.body[..end] == key_authorization.as_bytes() {
        Ok(())
    } else {
        Err(format!(
            "the body is not the key authorization: got {} ({} bytes), expected {:?}",
            quote(&fetched.body),
            fetched.body.len(),
            key_authorization
        ))
    }
}

/// Website change: 2xx and the body contains the expected value.
pub fn decide_website_change(fetched: &Fetched, expected: &str) -> Result<(), String> {
    success_status(fetched)?;
    let found = fetched
        .body
        .windows(expected.len().max(1))
        .any(|window| window == expected.as_bytes());
    if found {
        Ok(())
    } else {
        let read = if fetched.truncated {
            format!(" in the first {} bytes", fetched.body.len())
        } else {
            String::new()
        };
        Err(format!(
            "the expected value is not in the file{read}: got {} ({} bytes)",
            quote(&fetched.body),
            fetched.body.len()
        ))
    }
}
