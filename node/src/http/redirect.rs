//! The redirect policy (BR 3.2.2.4.18/.19 with Let's Encrypt's and Boulder's hardening, see
//! `../shared/standards.md` §6), as a pure function: given where we are, the status and the
//! `Location` value, either the next URL or the rule the redirect breaks. Checked at every hop
//! before anything is fetched; the resolved addresses are checked separately by the address
//! guard.

use url::{Host, Url};

/// Longest path (with query) accepted in a redirect target (Boulder's limit).
pub const MAX_PATH_LEN: usize = 2000;

/// The limits of a redirect chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectPolicy {
    /// Most redirects followed (BR sets none; Let's Encrypt uses 10).
    pub max_hops: usize,
    /// Ports a redirect may lead to (BR 1.6.1 Authorized Ports; HTTP checks use 80 and 443).
    pub ports: Vec<u16>,
}

impl Default for RedirectPolicy {
    fn default() -> Self {
        Self {
            max_hops: 10,
            ports: vec![80, 443],
        }
    }
}

/// Why a redirect is refused. The Display says which rule, for the problem detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectError {
    /// Only 301, 302, 307 and 308 redirects are followed.
    #[error("HTTP {status} is not a redirect the BRs allow (only 301, 302, 307, 308)")]
    Status {
        /// The status received.
        status: u16,
    },
    /// A redirect status without a usable `Location`.
    #[error("HTTP {status} redirect without a Location header")]
    MissingLocation {
        /// The status received.
        status: u16,
    },
    /// The `Location` value is not a URL, even relative to the current one.
    #[error("Location {location:?} is not a valid URL: {reason}")]
    BadLocation {
        /// The value received (truncated).
        location: String,
        /// Why.
        reason: LocationError,
    },
    /// Scheme other than http or https.
    #[error("redirect to scheme {scheme:?}; only http and https are allowed (BR 3.2.2.4.18)")]
    Scheme {
        /// The scheme.
        scheme: String,
    },
    /// Port other than the authorized ones.
    #[error("redirect to port {port}; only ports {allowed:?} are allowed (BR 3.2.2.4.18, 1.6.1)")]
    Port {
        /// The port.
        port: u16,
        /// The allowed ports.
        allowed: Vec<u16>,
    },
    /// An IP literal host.
    #[error("redirect to the IP address {host}; only domain names are followed")]
    IpLiteral {
        /// The host.
        host: String,
    },
    /// A host that cannot be a public domain name (single label, or a non-alphabetic TLD).
    #[error("redirect to {host:?}, which is not a public domain name")]
    NotPublicName {
        /// The host.
        host: String,
    },
    /// Credentials in the URL.
    #[error("redirect to a URL with user information; refused")]
    UserInfo,
    /// Path longer than [`MAX_PATH_LEN`].
    #[error("redirect path is {len} bytes, more than {MAX_PATH_LEN}")]
    PathTooLong {
        /// Its length.
        len: usize,
    },
    /// More hops than the policy allows.
    #[error("more than {max} redirects")]
    TooManyHops {
        /// The limit.
        max: usize,
    },
    /// A URL already visited in this chain.
    #[error("redirect loop back to {url}")]
    Loop {
        /// The repeated URL.
        url: String,
    },
}

/// Why a `Location` value is not a URL to follow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocationError {
    /// It does not parse, even relative to the current URL.
    #[error(transparent)]
    Parse(#[from] url::ParseError),
    /// It has no host.
    #[error("no host")]
    NoHost,
}

/// The next URL to fetch after `status` with `location` at `current`, given the URLs already
/// visited (the first request included). Relative locations resolve against `current`
/// (RFC 9110 §10.2.2); internationalised hosts come back as A-labels (IDNA, by `url`).
pub fn next_hop(
    current: &Url,
    status: u16,
    location: Option<&str>,
    visited: &[Url],
    policy: &RedirectPolicy,
) -> Result<Url, RedirectError> {
    if !matches!(status, 301 | 302 | 307 | 308) {
        return Err(RedirectError::Status { status });
    }
    let location = location
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .ok_or(RedirectError::MissingLocation { status })?;
    // visited holds the first URL too, so hops so far = visited.len() - 1.
    if visited.len() > policy.max_hops {
        return Err(RedirectError::TooManyHops {
            max: policy.max_hops,
        });
    }
    let mut next = current
        .join(location)
        .map_err(|error| bad_location(location, error.into()))?;
    next.set_fragment(None);
    match next.scheme() {
        "http" | "https" => {}
        other => {
            return Err(RedirectError::Scheme {
                scheme: other.to_owned(),
            });
        }
    }
    if !next.username().is_empty() || next.password().is_some() {
        return Err(RedirectError::UserInfo);
    }
    check_host(&next, location)?;
    let port = next.port_or_known_default().unwrap_or(0);
    if !policy.ports.contains(&port) {
        return Err(RedirectError::Port {
            port,
            allowed: policy.ports.clone(),
        });
    }
    let path_len = next.path().len() + next.query().map_or(0, |q| q.len() + 1);
    if path_len > MAX_PATH_LEN {
        return Err(RedirectError::PathTooLong { len: path_len });
    }
    if visited.contains(&next) {
        return Err(RedirectError::Loop {
            url: next.to_string(),
        });
    }
    Ok(next)
}

fn bad_location(location: &str, reason: LocationError) -> RedirectError {
    RedirectError::BadLocation {
        location: location.chars().take(200).collect(),
        reason,
    }
}

/// A redirect's host must be a public domain name: no IP literal, no single label, an
/// alphabetic (or IDNA) TLD.
fn check_host(next: &Url, location: &str) -> Result<(), RedirectError> {
    match next.host() {
        Some(Host::Domain(domain)) => {
            let domain = domain.trim_end_matches('.');
            let tld = domain.rsplit('.').next().unwrap_or_default();
            let public = domain.contains('.')
                && !tld.is_empty()
                && (tld.bytes().all(|b| b.is_ascii_alphabetic()) || tld.starts_with("xn--"));
            if public {
                Ok(())
            } else {
                Err(RedirectError::NotPublicName {
                    host: domain.to_owned(),
                })
            }
        }
        Some(Host::Ipv4(ip)) => Err(RedirectError::IpLiteral {
            host: ip.to_string(),
        }),
        Some(Host::Ipv6(ip)) => Err(RedirectError::IpLiteral {
            host: ip.to_string(),
        }),
        None => Err(bad_location(location, LocationError::NoHost)),
    }
}

/// Drives [`next_hop`] with arbitrary input (the `redirect_location` fuzz target): never
/// panics, and whatever it accepts obeys the policy.
pub fn exercise(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(current) = Url::parse("http://example.com/.well-known/acme-challenge/token") else {
        return;
    };
    let policy = RedirectPolicy::default();
    let visited = vec![current.clone()];
    for status in [301, 302, 303, 307, 308] {
        if let Ok(next) = next_hop(&current, status, Some(text), &visited, &policy) {
            assert!(matches!(next.scheme(), "http" | "https"));
            assert!(
                policy
                    .ports
                    .contains(&next.port_or_known_default().unwrap_or(0))
            );
            assert!(matches!(next.host(), Some(Host::Domain(_))));
            assert_ne!(status, 303);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    fn hop(status: u16, location: &str) -> Result<Url, RedirectError> {
        let current = url("http://example.com/.well-known/acme-challenge/tok");
        next_hop(
            &current,
            status,
            Some(location),
            std::slice::from_ref(&current),
            &RedirectPolicy::default(),
        )
    }

    #[test]
    fn allowed_redirects_follow() {
        assert_eq!(
            hop(301, "https://www.example.com/x").unwrap().as_str(),
            "https://www.example.com/x"
        );
        assert_eq!(
            hop(302, "/other").unwrap().as_str(),
            "http://example.com/other"
        );
        assert_eq!(
            hop(307, "sibling").unwrap().as_str(),
            "http://example.com/.well-known/acme-challenge/sibling"
        );
        assert_eq!(
            hop(308, "//cdn.example.net/a?b=c#frag").unwrap().as_str(),
            "http://cdn.example.net/a?b=c"
        );
        assert_eq!(
            hop(301, "http://example.com:443/x").unwrap().port(),
            Some(443)
        );
    }

    #[test]
    fn idna_hosts_become_a_labels() {
        assert_eq!(
            hop(301, "http://bücher.example/").unwrap().host_str(),
            Some("xn--bcher-kva.example")
        );
    }

    /// Status, Location, and the error expected.
    type RefusalCase = (u16, &'static str, fn(&RedirectError) -> bool);

    #[test]
    fn each_rule_refuses_with_its_error() {
        let cases: [RefusalCase; 11] = [
            (303, "/x", |e| {
                matches!(e, RedirectError::Status { status: 303 })
            }),
            (200, "/x", |e| {
                matches!(e, RedirectError::Status { status: 200 })
            }),
            (301, "ftp://example.com/x", |e| {
                matches!(e, RedirectError::Scheme { .. })
            }),
            (301, "http://example.com:8080/x", |e| {
                matches!(e, RedirectError::Port { port: 8080, .. })
            }),
            (301, "http://192.0.2.1/x", |e| {
                matches!(e, RedirectError::IpLiteral { .. })
            }),
            (301, "http://[2001:db8::1]/x", |e| {
                matches!(e, RedirectError::IpLiteral { .. })
            }),
            (301, "http://localhost/x", |e| {
                matches!(e, RedirectError::NotPublicName { .. })
            }),
            (301, "http://user:pw@example.com/x", |e| {
                matches!(e, RedirectError::UserInfo)
            }),
            (301, "http://exa mple.com/x", |e| {
                matches!(e, RedirectError::BadLocation { .. })
            }),
            (
                301,
                "http://example.123/x",
                // WHATWG URL parsing reads a numeric last label as an IPv4 address.
                |e| matches!(e, RedirectError::BadLocation { .. }),
            ),
            (
                301,
                "http://example.com/.well-known/acme-challenge/tok",
                |e| matches!(e, RedirectError::Loop { .. }),
            ),
        ];
        for (status, location, expected) in cases {
            let error = hop(status, location).expect_err(location);
            assert!(expected(&error), "{status} {location}: {error:?}");
        }
    }

    #[test]
    fn missing_location_and_long_paths_are_refused() {
        let current = url("http://example.com/");
        let visited = vec![current.clone()];
        let policy = RedirectPolicy::default();
        assert_eq!(
            next_hop(&current, 301, None, &visited, &policy),
            Err(RedirectError::MissingLocation { status: 301 })
        );
        assert_eq!(
            next_hop(&current, 301, Some("  "), &visited, &policy),
            Err(RedirectError::MissingLocation { status: 301 })
        );
        let long = format!("/{}", "a".repeat(MAX_PATH_LEN));
        assert!(matches!(
            next_hop(&current, 301, Some(&long), &visited, &policy),
            Err(RedirectError::PathTooLong { .. })
        ));
    }

    #[test]
    fn the_hop_limit_counts_redirects_not_requests() {
        let policy = RedirectPolicy {
            max_hops: 2,
            ..RedirectPolicy::default()
        };
        let start = url("http://example.com/0");
        let mut visited = vec![start.clone()];
        let mut current = start;
        for i in 1..=2 {
            current = next_hop(&current, 302, Some(&format!("/{i}")), &visited, &policy).unwrap();
            visited.push(current.clone());
        }
        assert_eq!(
            next_hop(&current, 302, Some("/3"), &visited, &policy),
            Err(RedirectError::TooManyHops { max: 2 })
        );
    }

    #[test]
    fn exercise_accepts_arbitrary_input() {
        for data in [
            &b""[..],
            b"http://",
            b"\xff\xfe",
            b"https://xn--/",
            b"//[::1]:80/",
            b"javascript:alert(1)",
        ] {
            exercise(data);
        }
    }
}
