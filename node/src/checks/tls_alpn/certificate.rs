//! The pure half of ACME tls-alpn-01 (RFC 8737 §3, RFC 8738 §6): read the challenge
//! certificate's subjectAltName and `id-pe-acmeIdentifier` extension and decide. Everything here
//! takes bytes a remote server chose, so nothing here may panic (fuzzed by `fuzz/acme_identifier`).

use std::net::IpAddr;

use x509_parser::error::X509Error;
use x509_parser::extensions::GeneralName;

/// The ALPN protocol of the challenge (RFC 8737 §6.2).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";
/// `id-pe-acmeIdentifier` (RFC 8737 §6.1).
pub const ACME_IDENTIFIER_OID: &str = "1.3.6.1.5.5.7.1.31";
/// Most subjectAltName entries quoted in evidence.
pub const MAX_REPORTED_NAMES: usize = 16;

/// Why an identifier, a certificate or a challenge is refused: the pure half's one error type.
/// The check reports it as `malformed` (identifier), `tls` (a certificate that does not parse, or
/// no `acme-tls/1`) or `unauthorized` (a wrong challenge certificate).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChallengeError {
    /// The identifier is a wildcard name.
    #[error(
        "{identifier:?} is a wildcard name: tls-alpn-01 cannot validate wildcards (RFC 8555 \
         §7.1.3); use a DNS method"
    )]
    Wildcard {
        /// The identifier as given.
        identifier: String,
    },
    /// The identifier is neither an IP address nor a host name.
    #[error("identifier {identifier:?} is not a host name")]
    NotHostName {
        /// The identifier as given.
        identifier: String,
    },
    /// The certificate is not DER X.509.
    #[error("the certificate does not parse: {0}")]
    Unparsable(x509_parser::nom::Err<X509Error>),
    /// Bytes follow the certificate's DER.
    #[error("the certificate has {0} trailing bytes after its DER")]
    TrailingBytes(usize),
    /// The certificate carries the acmeIdentifier extension twice.
    #[error("the certificate has two acmeIdentifier extensions")]
    TwoAcmeIdentifiers,
    /// The subjectAltName extension is malformed.
    #[error("the subjectAltName does not parse: {0}")]
    SubjectAltName(X509Error),
    /// The acmeIdentifier value is not `04 20` and 32 bytes.
    #[error(
        "the acmeIdentifier value is not a DER OCTET STRING of 32 bytes ({length} bytes: {})",
        hex::encode(start)
    )]
    AcmeIdentifierValue {
        /// The value's length.
        length: usize,
        /// Its first bytes (at most 8).
        start: Vec<u8>,
    },
    /// The server did not negotiate `acme-tls/1`.
    #[error(
        "the server did not negotiate ALPN \"acme-tls/1\" (got {}): a server or proxy that \
         ignores ALPN answered with its ordinary certificate",
        alpn_shown(got)
    )]
    NoAcmeAlpn {
        /// The protocol negotiated, if any.
        got: Option<Vec<u8>>,
    },
    /// The certificate has no subjectAltName.
    #[error("the certificate has no subjectAltName; it must have exactly one, {wanted}")]
    NoSubjectAltName {
        /// The one entry wanted (`dns:<name>` or `ip:<address>`).
        wanted: String,
    },
    /// The subjectAltName is not exactly the identifier.
    #[error(
        "the certificate's subjectAltName must be exactly one entry, {wanted}; it has {count} ({})",
        shown.join(", ")
    )]
    WrongSubjectAltNames {
        /// The one entry wanted.
        wanted: String,
        /// How many entries the certificate has.
        count: usize,
        /// The first [`MAX_REPORTED_NAMES`] entries.
        shown: Vec<String>,
    },
    /// The certificate has no acmeIdentifier extension.
    #[error("the certificate has no acmeIdentifier extension (1.3.6.1.5.5.7.1.31)")]
    NoAcmeIdentifier,
    /// The acmeIdentifier extension is not critical.
    #[error("the acmeIdentifier extension is not marked critical (RFC 8737 §3)")]
    NotCritical,
    /// The acmeIdentifier carries another digest.
    #[error(
        "the acmeIdentifier is {} but SHA-256 of the key authorization is {}",
        hex::encode(found),
        hex::encode(wanted)
    )]
    WrongDigest {
        /// The digest in the certificate.
        found: [u8; 32],
        /// SHA-256 of the key authorization.
        wanted: [u8; 32],
    },
}

fn alpn_shown(alpn: &Option<Vec<u8>>) -> String {
    alpn.as_ref().map_or_else(
        || "none".to_owned(),
        |p| format!("{:?}", String::from_utf8_lossy(p)),
    )
}

/// What the challenge certificate says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// Lower-case hex SHA-256 of the certificate DER.
    pub sha256: String,
    /// subjectAltName entries: `dns:<name>`, `ip:<address>`, or `other:<type>`.
    pub names: Vec<String>,
    /// The acmeIdentifier extension: (critical, extnValue bytes), if present.
    pub acme_identifier: Option<(bool, Vec<u8>)>,
}

/// The identifier the challenge is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identifier {
    /// A DNS name (A-label form, no trailing dot).
    Dns(String),
    /// An IP address (RFC 8738).
    Ip(IpAddr),
}

impl Identifier {
    /// Reads an identifier: an IP literal or a DNS name; wildcards are refused (RFC 8737 §3 does
    /// not apply to them).
    pub fn parse(text: &str) -> Result<Self, ChallengeError> {
        if text.starts_with("*.") {
            return Err(ChallengeError::Wildcard {
                identifier: text.to_owned(),
            });
        }
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(Identifier::Ip(ip));
        }
        let name = text.trim_end_matches('.').to_ascii_lowercase();
        if name.is_empty() || name.len() > 253 {
            return Err(ChallengeError::NotHostName {
                identifier: text.to_owned(),
            });
        }
        Ok(Identifier::Dns(name))
    }

    /// The TLS server name to send: the name itself, or the reverse-lookup name of an IP
    /// (RFC 8738 §6; RFC 6066 bars IP literals in SNI).
    pub fn server_name(&self) -> String {
        match self {
            Identifier::Dns(name) => name.clone(),
            Identifier::Ip(IpAddr::V4(v4)) => {
                let o = v4.octets();
                format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
            }
            Identifier::Ip(IpAddr::V6(v6)) => {
                let mut name = String::with_capacity(73);
                for byte in v6.octets().iter().rev() {
                    name.push_str(&format!("{:x}.{:x}.", byte & 0xf, byte >> 4));
                }
                name.push_str("ip6.arpa");
                name
            }
        }
    }
}

/// Reads the facts a decision needs from a DER certificate.
pub fn inspect(der: &[u8]) -> Result<Facts, ChallengeError> {
    let (rest, certificate) =
        x509_parser::parse_x509_certificate(der).map_err(ChallengeError::Unparsable)?;
    if !rest.is_empty() {
        return Err(ChallengeError::TrailingBytes(rest.len()));
    }
    let mut acme_identifier = None;
    let mut names = Vec::new();
    for extension in certificate.extensions() {
        if extension.oid.to_id_string() == ACME_IDENTIFIER_OID {
            if acme_identifier.is_some() {
                return Err(ChallengeError::TwoAcmeIdentifiers);
            }
            acme_identifier = Some((extension.critical, extension.value.to_vec()));
        }
    }
    match certificate.subject_alternative_name() {
        Ok(Some(san)) => {
            for name in &san.value.general_names {
                names.push(match name {
                    GeneralName::DNSName(dns) => format!("dns:{dns}"),
                    GeneralName::IPAddress(bytes) => match ip_from(bytes) {
                        Some(ip) => format!("ip:{ip}"),
                        None => format!("ip:<{} bytes>", bytes.len()),
                    },
                    GeneralName::RFC822Name(_) => "other:rfc822Name".into(),
                    GeneralName::URI(_) => "other:uniformResourceIdentifier".into(),
                    GeneralName::DirectoryName(_) => "other:directoryName".into(),
                    GeneralName::OtherName(..) => "other:otherName".into(),
                    GeneralName::RegisteredID(_) => "other:registeredID".into(),
                    GeneralName::EDIPartyName(_) => "other:ediPartyName".into(),
                    GeneralName::X400Address(_) => "other:x400Address".into(),
                    GeneralName::Invalid(..) => "other:invalid".into(),
                });
            }
        }
        Ok(None) => {}
        Err(error) => return Err(ChallengeError::SubjectAltName(error)),
    }
    Ok(Facts {
        sha256: hex::encode(ring::digest::digest(&ring::digest::SHA256, der)),
        names,
        acme_identifier,
    })
}

fn ip_from(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

/// Reads the acmeIdentifier extnValue: the DER of `OCTET STRING (SIZE (32))`, exactly `04 20`
/// and 32 bytes (RFC 8737 §3).
pub fn parse_acme_identifier(value: &[u8]) -> Result<[u8; 32], ChallengeError> {
    match value {
        [0x04, 0x20, digest @ ..] if digest.len() == 32 => {
            let mut out = [0u8; 32];
            out.copy_from_slice(digest);
            Ok(out)
        }
        _ => Err(ChallengeError::AcmeIdentifierValue {
            length: value.len(),
            start: value[..value.len().min(8)].to_vec(),
        }),
    }
}

/// The SHA-256 the acmeIdentifier must carry: of the key authorization (RFC 8737 §3).
pub fn expected_digest(key_authorization: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(
        ring::digest::digest(&ring::digest::SHA256, key_authorization.as_bytes()).as_ref(),
    );
    out
}

/// Decides the challenge: ALPN `acme-tls/1`, exactly one subjectAltName equal to the identifier,
/// and a critical acmeIdentifier carrying `digest`.
pub fn decide(
    alpn: Option<&[u8]>,
    facts: &Facts,
    identifier: &Identifier,
    digest: &[u8; 32],
) -> Result<(), ChallengeError> {
    if alpn != Some(ACME_TLS_ALPN) {
        return Err(ChallengeError::NoAcmeAlpn {
            got: alpn.map(<[u8]>::to_vec),
        });
    }
    let wanted = match identifier {
        Identifier::Dns(name) => format!("dns:{name}"),
        Identifier::Ip(ip) => format!("ip:{ip}"),
    };
    match facts.names.as_slice() {
        [only] if only.eq_ignore_ascii_case(&wanted) => {}
        [] => return Err(ChallengeError::NoSubjectAltName { wanted }),
        names => {
            return Err(ChallengeError::WrongSubjectAltNames {
                wanted,
                count: names.len(),
                shown: names.iter().take(MAX_REPORTED_NAMES).cloned().collect(),
            });
        }
    }
    let Some((critical, value)) = &facts.acme_identifier else {
        return Err(ChallengeError::NoAcmeIdentifier);
    };
    if !critical {
        return Err(ChallengeError::NotCritical);
    }
    let found = parse_acme_identifier(value)?;
    if &found != digest {
        return Err(ChallengeError::WrongDigest {
            found,
            wanted: *digest,
        });
    }
    Ok(())
}

/// Fuzzing entry point (`fuzz/acme_identifier`): reads `data` as an acmeIdentifier value and as
/// a certificate, decides on it, and checks the invariants a remote server must not be able to
/// break (no panic; a pass only for a certificate that meets every rule).
pub fn exercise(data: &[u8]) {
    if let Ok(digest) = parse_acme_identifier(data) {
        assert!(data.len() == 34 && data[..2] == [0x04, 0x20] && data[2..] == digest);
    }
    let Ok(facts) = inspect(data) else {
        return;
    };
    assert_eq!(facts.sha256.len(), 64);
    let identifier = Identifier::Dns("example.com".into());
    let digest = match &facts.acme_identifier {
        Some((_, value)) => parse_acme_identifier(value).unwrap_or([0; 32]),
        None => [0; 32],
    };
    for alpn in [Some(ACME_TLS_ALPN), None, Some(&b"h2"[..])] {
        if decide(alpn, &facts, &identifier, &digest).is_ok() {
            assert_eq!(alpn, Some(ACME_TLS_ALPN));
            assert_eq!(facts.names.len(), 1);
            assert!(facts.names[0].eq_ignore_ascii_case("dns:example.com"));
            assert!(
                facts
                    .acme_identifier
                    .as_ref()
                    .is_some_and(|(critical, _)| *critical)
            );
        }
    }
}
