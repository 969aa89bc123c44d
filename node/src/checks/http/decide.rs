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

use crate::checks::dcv::request::UrlScheme;
use crate::http::fetch::Fetched;

/// Why the check's parameters give no URL to fetch (the problem is `malformed`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The identifier is a wildcard name.
    #[error(
        "{identifier:?} is a wildcard name: HTTP-based methods cannot validate wildcards \
         (BR 3.2.2.4.18/.19, RFC 8555 §7.1.3); use a DNS method"
    )]
    WildcardName {
        /// The identifier as given.
        identifier: String,
    },
    /// The identifier is neither an IP address nor a host name.
    #[error("identifier {identifier:?} is not a host name")]
    NotHostName {
        /// The identifier as given.
        identifier: String,
    },
    /// The URL built does not parse.
    #[error("cannot build the URL {text:?}: {source}")]
    Url {
        /// The URL text.
        text: String,
        /// Why it does not parse.
        source: url::ParseError,
    },
    /// The token is not base64url or too long.
    #[error(
        "token must be 1-{} base64url characters (RFC 8555 §8.3)",
        MAX_TOKEN_LEN
    )]
    Token,
    /// The key authorization is not `token.thumbprint`.
    #[error(
        "key_authorization must be `<token>.<base64url account key thumbprint>` \
         (RFC 8555 §8.1)"
    )]
    KeyAuthorization,
    /// The file name is not one safe path segment.
    #[error(
        "file name must be 1-{} characters of A-Z a-z 0-9 . _ - (one path segment)",
        MAX_TOKEN_LEN
    )]
    File,
    /// The expected value is empty or too long.
    #[error("expected must be 1-{} bytes", MAX_VALUE_LEN)]
    Expected,
    /// The value would be sent in the URL.
    #[error(
        "the Random Value or Request Token appears in the request URL, which BR 3.2.2.4.18 \
         forbids: put it in the file's content only"
    )]
    ValueInUrl,
}

/// Why the answer does not prove control (the problem is `unauthorized`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The status is not 2xx.
    #[error("HTTP status {status} (a 2xx is required); body {body}")]
    Status {
        /// The status.
        status: u16,
        /// The start of the body.
        body: Quoted,
    },
    /// An http-01 body longer than the cap.
    #[error("the body is longer than the {read} bytes read; a key authorization is far shorter")]
    TooLong {
        /// Bytes read.
        read: usize,
    },
    /// The http-01 body is not the key authorization.
    #[error(
        "the body is not the key authorization: got {body} ({} bytes), expected {expected:?}",
        body.length
    )]
    NotKeyAuthorization {
        /// The start of the body.
        body: Quoted,
        /// The key authorization.
        expected: String,
    },
    /// The website-change file does not contain the value.
    #[error(
        "the expected value is not in the file{}: got {body} ({} bytes)",
        if *truncated { format!(" in the first {} bytes", body.length) } else { String::new() },
        body.length
    )]
    ValueMissing {
        /// The start of the body.
        body: Quoted,
        /// Only the first `max_body_bytes` were read.
        truncated: bool,
    },
}

/// The start of a body as a problem quotes it: at most [`QUOTED_BODY_BYTES`], Rust-escaped,
/// with `…` when there was more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quoted {
    /// The first bytes.
    start: Vec<u8>,
    /// The body's whole length (as read).
    length: usize,
}

impl Quoted {
    fn new(body: &[u8]) -> Self {
        Self {
            start: body[..body.len().min(QUOTED_BODY_BYTES)].to_vec(),
            length: body.len(),
        }
    }
}

impl std::fmt::Display for Quoted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.start))?;
        if self.length > QUOTED_BODY_BYTES {
            f.write_str("…")?;
        }
        Ok(())
    }
}

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
fn host(identifier: &str) -> Result<String, RequestError> {
    if identifier.starts_with("*.") {
        return Err(RequestError::WildcardName {
            identifier: identifier.to_owned(),
        });
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
        return Err(RequestError::NotHostName {
            identifier: identifier.to_owned(),
        });
    }
    Ok(name)
}

fn parse(text: &str) -> Result<Url, RequestError> {
    Url::parse(text).map_err(|source| RequestError::Url {
        text: text.to_owned(),
        source,
    })
}

/// The http-01 URL, after checking the token and the key authorization's form.
pub fn http01_url(
    identifier: &str,
    token: &str,
    key_authorization: &str,
) -> Result<Url, RequestError> {
    if token.len() > MAX_TOKEN_LEN || !is_base64url(token) {
        return Err(RequestError::Token);
    }
    check_key_authorization(token, key_authorization)?;
    parse(&format!(
        "http://{}/.well-known/acme-challenge/{token}",
        host(identifier)?
    ))
}

/// Checks that `key_authorization` is `token.thumbprint` (RFC 8555 §8.1).
pub fn check_key_authorization(token: &str, key_authorization: &str) -> Result<(), RequestError> {
    let well_formed = key_authorization.len() <= MAX_VALUE_LEN
        && key_authorization
            .strip_prefix(token)
            .and_then(|rest| rest.strip_prefix('.'))
            .is_some_and(is_base64url);
    if well_formed {
        Ok(())
    } else {
        Err(RequestError::KeyAuthorization)
    }
}

/// The website-change URL, after checking the file name, the scheme and that the value is not
/// in the URL.
pub fn website_change_url(
    identifier: &str,
    file: &str,
    scheme: UrlScheme,
    expected: &str,
) -> Result<Url, RequestError> {
    let file_ok = file.len() <= MAX_TOKEN_LEN
        && !file.is_empty()
        && file != "."
        && file != ".."
        && file
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !file_ok {
        return Err(RequestError::File);
    }
    if expected.is_empty() || expected.len() > MAX_VALUE_LEN {
        return Err(RequestError::Expected);
    }
    let url = parse(&format!(
        "{}://{}/.well-known/pki-validation/{file}",
        scheme.as_str(),
        host(identifier)?
    ))?;
    if url.as_str().contains(expected) {
        return Err(RequestError::ValueInUrl);
    }
    Ok(url)
}

fn success_status(fetched: &Fetched) -> Result<(), Refusal> {
    if (200..300).contains(&fetched.status) {
        Ok(())
    } else {
        Err(Refusal::Status {
            status: fetched.status,
            body: Quoted::new(&fetched.body),
        })
    }
}

/// http-01: 2xx and the body equals the key authorization once trailing whitespace is ignored.
pub fn decide_http01(fetched: &Fetched, key_authorization: &str) -> Result<(), Refusal> {
    success_status(fetched)?;
    if fetched.truncated {
        return Err(Refusal::TooLong {
            read: fetched.body.len(),
        });
    }
    let end = fetched
        .body
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    if &fetched.body[..end] == key_authorization.as_bytes() {
        Ok(())
    } else {
        Err(Refusal::NotKeyAuthorization {
            body: Quoted::new(&fetched.body),
            expected: key_authorization.to_owned(),
        })
    }
}

/// Website change: 2xx and the body contains the expected value.
pub fn decide_website_change(fetched: &Fetched, expected: &str) -> Result<(), Refusal> {
    success_status(fetched)?;
    let found = fetched
        .body
        .windows(expected.len().max(1))
        .any(|window| window == expected.as_bytes());
    if found {
        Ok(())
    } else {
        Err(Refusal::ValueMissing {
            body: Quoted::new(&fetched.body),
            truncated: fetched.truncated,
        })
    }
}
