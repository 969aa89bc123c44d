//! What a primary asks a perspective: a request carrying one or more targets, each with its check.

use std::fmt;
use std::str::FromStr;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The protocol version this crate speaks; requests carrying another are refused with
/// [`crate::ProtocolErrorKind::UnsupportedVersion`].
pub const PROTOCOL_VERSION: u16 = 1;

/// The QUIC/TLS application protocol (ALPN) identifier of version 1.
pub const ALPN: &[u8] = b"mpic/1";

/// Longest request id accepted, in bytes.
pub const MAX_REQUEST_ID_LEN: usize = 128;
/// Shortest nonce accepted, in bytes (128 bits: unguessable, so a result cannot be precomputed).
pub const MIN_NONCE_LEN: usize = 16;
/// Longest nonce accepted, in bytes.
pub const MAX_NONCE_LEN: usize = 64;
/// Longest identifier (domain name or IP address text) accepted, in bytes (RFC 1035 §2.3.4: 253
/// octets in presentation form, plus room for a `*.` prefix).
pub const MAX_IDENTIFIER_LEN: usize = 255;
/// Most account URIs one CAA check may carry (`account_uri` and `account_uris` together): the
/// account and its Parent Accounts (BR 4.2.2.1.2) are a handful; the cap bounds the work a
/// peer can ask for per record.
pub const MAX_ACCOUNT_URIS: usize = 16;

/// [`CaaCheck::certificate_type`] for a TLS server certificate (the default when absent).
pub const CERTIFICATE_TYPE_TLS: &str = "tls";
/// [`CaaCheck::certificate_type`] for an S/MIME certificate (`issuemail`, RFC 9495).
pub const CERTIFICATE_TYPE_SMIME: &str = "s-mime";

/// One validation request: every target is checked concurrently and answered with one signed
/// result each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Protocol version; must be [`PROTOCOL_VERSION`].
    pub version: u16,
    /// The primary's identifier for this attempt, echoed in every result (BR 5.4.1 logging).
    pub request_id: String,
    /// Fresh random bytes from the primary, echoed in every signed result so a result cannot be
    /// replayed into another attempt (BR 3.2.2.9: no reuse of corroborations across attempts).
    #[serde(with = "serde_bytes")]
    pub nonce: Vec<u8>,
    /// Absolute deadline, UNIX milliseconds (UTC). The node caps it to its own maximum.
    pub deadline_unix_ms: u64,
    /// The identifiers to check, typically a certificate's SANs.
    pub targets: Vec<Target>,
}

/// A problem with a request that the node refuses before doing any work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The version is not [`PROTOCOL_VERSION`].
    #[error("protocol version {0} is not supported (this node speaks version {PROTOCOL_VERSION})")]
    UnsupportedVersion(u16),
    /// The request id is empty, too long or not printable ASCII.
    #[error("request_id must be 1-{MAX_REQUEST_ID_LEN} printable ASCII characters")]
    BadRequestId,
    /// The nonce length is out of range.
    #[error("nonce must be {MIN_NONCE_LEN}-{MAX_NONCE_LEN} bytes, got {0}")]
    BadNonce(usize),
    /// No targets.
    #[error("request has no targets")]
    NoTargets,
    /// More targets than the node accepts in one request.
    #[error("request has {count} targets, this node accepts at most {max}")]
    TooManyTargets {
        /// Targets in the request.
        count: usize,
        /// The node's limit.
        max: usize,
    },
    /// The deadline has already passed.
    #[error("deadline {deadline_unix_ms} is {late_ms} ms in the past")]
    DeadlinePassed {
        /// The requested deadline.
        deadline_unix_ms: u64,
        /// How long ago it was, by the node's clock.
        late_ms: u64,
    },
}

impl Request {
    /// Checks the request-level fields against the protocol limits, the node's target cap and
    /// its clock. Target identifiers are checked per target, so one bad SAN does not sink the rest.
    pub fn validate(&self, max_targets: usize, now_unix_ms: u64) -> Result<(), RequestError> {
        if self.version != PROTOCOL_VERSION {
            return Err(RequestError::UnsupportedVersion(self.version));
        }
        if !valid_request_id(&self.request_id) {
            return Err(RequestError::BadRequestId);
        }
        if !(MIN_NONCE_LEN..=MAX_NONCE_LEN).contains(&self.nonce.len()) {
            return Err(RequestError::BadNonce(self.nonce.len()));
        }
        if self.targets.is_empty() {
            return Err(RequestError::NoTargets);
        }
        if self.targets.len() > max_targets {
            return Err(RequestError::TooManyTargets {
                count: self.targets.len(),
                max: max_targets,
            });
        }
        if self.deadline_unix_ms <= now_unix_ms {
            return Err(RequestError::DeadlinePassed {
                deadline_unix_ms: self.deadline_unix_ms,
                late_ms: now_unix_ms - self.deadline_unix_ms,
            });
        }
        Ok(())
    }
}

/// Whether `id` is a usable request id: 1 to [`MAX_REQUEST_ID_LEN`] printable ASCII characters.
pub fn valid_request_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_REQUEST_ID_LEN && id.bytes().all(|b| b.is_ascii_graphic())
}

/// One identifier and the check to run on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// A domain name (possibly `*.`-prefixed) or an IP address, as in the certificate.
    pub identifier: String,
    /// What to check.
    pub check: Check,
}

/// The check to run on a target. On the wire a map with a `kind` key; kinds this version does not
/// know decode as [`Check::Unknown`] and are answered with an `unsupported` outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Check {
    /// CAA permission (BR 3.2.2.8, RFC 8659, RFC 8657).
    Caa(CaaCheck),
    /// A domain-control validation method.
    Dcv(DcvCheck),
    /// A kind this version does not know; the kind is kept so results can echo it.
    Unknown {
        /// The `kind` value received.
        kind: String,
    },
}

impl Check {
    /// The wire name of the kind: `caa`, `dcv`, or the unknown kind's text.
    pub fn kind(&self) -> &str {
        match self {
            Check::Caa(_) => "caa",
            Check::Dcv(_) => "dcv",
            Check::Unknown { kind } => kind,
        }
    }
}

#[derive(Serialize)]
struct TaggedRef<'a, T> {
    kind: &'a str,
    #[serde(flatten)]
    body: &'a T,
}

impl Serialize for Check {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Check::Caa(body) => TaggedRef { kind: "caa", body }.serialize(serializer),
            Check::Dcv(body) => TaggedRef { kind: "dcv", body }.serialize(serializer),
            Check::Unknown { kind } => {
                #[derive(Serialize)]
                struct KindOnly<'a> {
                    kind: &'a str,
                }
                KindOnly { kind }.serialize(serializer)
            }
        }
    }
}

impl<'de> Deserialize<'de> for Check {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Buffer the map once, read its `kind`, then decode the body as that kind. Decoding via a
        // self-describing value keeps unknown kinds (and unknown fields) from failing the request.
        let value = ciborium::Value::deserialize(deserializer)?;
        let ciborium::Value::Map(entries) = &value else {
            return Err(D::Error::custom("check must be a map with a \"kind\" key"));
        };
        let kind = entries
            .iter()
            .find_map(|(key, value)| match (key.as_text(), value.as_text()) {
                (Some("kind"), Some(kind)) => Some(kind.to_owned()),
                _ => None,
            })
            .ok_or_else(|| D::Error::custom("check has no text \"kind\""))?;
        match kind.as_str() {
            "caa" => value
                .deserialized()
                .map(Check::Caa)
                .map_err(D::Error::custom),
            "dcv" => value
                .deserialized()
                .map(Check::Dcv)
                .map_err(D::Error::custom),
            _ => Ok(Check::Unknown { kind }),
        }
    }
}

/// CAA permission check (BR 3.2.2.8): may the CA named by `issuer_domains` issue for the target?
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaaCheck {
    /// The CA's Issuer Domain Names (CPS §4.2); any match authorizes (RFC 8659 §4.2).
    pub issuer_domains: Vec<String>,
    /// Check for a wildcard certificate (`issuewild` selection, RFC 8659 §4.3).
    #[serde(default)]
    pub wildcard: bool,
    /// The requesting account's URI, matched against `accounturi` (RFC 8657 §3). Kept for v1
    /// primaries that send one; it joins [`Self::account_uris`] (see [`Self::accounts`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_uri: Option<String>,
    /// Every account URI that may satisfy `accounturi`: the requesting ACME account and the
    /// Parent Accounts the CA maps it to (BR 4.2.2.1.2, SC-098v2: the Subordinate ACME Account
    /// exception to RFC 8657 §3). At most [`MAX_ACCOUNT_URIS`] with `account_uri`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub account_uris: Vec<String>,
    /// The validation method used, matched against `validationmethods` (RFC 8657 §4): a DCV
    /// method wire name (`acme-http-01`, `dns-change`, ...), an IANA ACME label (`http-01`) or
    /// a BR label `ca-tbr-<N>` for BR 3.2.2.4.N (BR 4.2.2.1.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Opt in to the BR 3.2.2.8 lookup-failure carve-out (Open MPIC `allow_lookup_failure`).
    #[serde(default)]
    pub allow_lookup_failure: bool,
    /// The kind of certificate: [`CERTIFICATE_TYPE_TLS`] (absent: the default; `issue` and
    /// `issuewild` govern, RFC 8659 §4.3) or [`CERTIFICATE_TYPE_SMIME`] (only `issuemail`
    /// governs, RFC 9495 §4, S/MIME BR 4.2.2.2). A node answers any other value with an
    /// `unsupported` failure, never a pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_type: Option<String>,
}

impl CaaCheck {
    /// The account URIs that may satisfy `accounturi`: `account_uri` (if any) then each of
    /// `account_uris`, duplicates kept (matching is "equals any").
    pub fn accounts(&self) -> impl Iterator<Item = &str> {
        self.account_uri
            .iter()
            .chain(self.account_uris.iter())
            .map(String::as_str)
    }
}

/// Domain-control validation check: is the expected value where the method says it must be?
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DcvCheck {
    /// The method.
    pub method: DcvMethod,
    /// Random Value or Request Token (BR 3.2.2.4.7, 3.2.2.4.18), the expected contact, the
    /// expected IP address(es) of `ip-address` (comma-separated) or the expected domain of
    /// `reverse-address-lookup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// ACME key authorization (RFC 8555 §8.1) for the ACME methods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_authorization: Option<String>,
    /// ACME token (RFC 8555 §8.3) or website-change file name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Underscore label to look under (`_label.<name>`, BR 3.2.2.4.7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Issuer Domain Name for dns-persist (BR 3.2.2.4.22).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_domain: Option<String>,
    /// ACME account URI for dns-persist and dns-account-01.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_uri: Option<String>,
    /// The certificate is for a wildcard name.
    #[serde(default)]
    pub wildcard: bool,
    /// `http` (default) or `https`: the scheme of the website-change request (BR 3.2.2.4.18; Open
    /// MPIC `url_scheme`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_scheme: Option<String>,
    /// dns-change: look in this record type alone (`TXT`, `CNAME` or `CAA`; Open MPIC
    /// `dns_record_type`). Absent: all three, as BR 3.2.2.4.7 allows. ip-address: `A` or
    /// `AAAA` alone; absent: both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_type: Option<String>,
    /// dns-change only: the record value must equal `expected` (Open MPIC
    /// `require_exact_match`). Default: `expected` must be present in it (BR "presence").
    #[serde(default, skip_serializing_if = "is_false")]
    pub exact_match: bool,
    /// dns-change only: compare TXT and CAA values ignoring ASCII case (Open MPIC
    /// `require_exact_case = false`). Default: byte for byte.
    #[serde(default, skip_serializing_if = "is_false")]
    pub case_insensitive: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// A DCV method by its wire name. Unknown names are kept in [`DcvMethod::Other`] and answered
/// with an `unsupported` outcome.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DcvMethod {
    /// `dns-change`: BR 3.2.2.4.7.
    DnsChange,
    /// `acme-dns-01`: BR 3.2.2.4.7 via RFC 8555 §8.4.
    AcmeDns01,
    /// `acme-dns-account-01`: BR 3.2.2.4.21.
    AcmeDnsAccount01,
    /// `dns-persist-01`: BR 3.2.2.4.22.
    DnsPersist01,
    /// `acme-http-01`: BR 3.2.2.4.19, RFC 8555 §8.3.
    AcmeHttp01,
    /// `acme-tls-alpn-01`: BR 3.2.2.4.20, RFC 8737.
    AcmeTlsAlpn01,
    /// `website-change`: BR 3.2.2.4.18.
    WebsiteChange,
    /// `contact-email-txt`: BR 3.2.2.4.14 (`_validation-contactemail` TXT).
    ContactEmailTxt,
    /// `contact-phone-txt`: BR 3.2.2.4.16 (`_validation-contactphone` TXT).
    ContactPhoneTxt,
    /// `contact-email-caa`: BR 3.2.2.4.13 (CAA `contactemail`).
    ContactEmailCaa,
    /// `contact-phone-caa`: BR 3.2.2.4.17 (CAA `contactphone`).
    ContactPhoneCaa,
    /// `ip-address`: BR 3.2.2.4.8, an A/AAAA answer for the name holds the expected address.
    /// Retired by the BR (CAs MUST NOT rely on it from 2026-03-15); offered for corroborating
    /// and auditing, never as a reason to issue.
    IpAddress,
    /// `reverse-address-lookup`: BR 3.2.2.5.3, a PTR record of the IP identifier names the
    /// expected domain. CAs MUST NOT rely on it from 2027-03-15.
    ReverseAddressLookup,
    /// A name this version does not know.
    Other(String),
}

impl DcvMethod {
    /// Every known method, in wire-name order.
    pub const KNOWN: [DcvMethod; 13] = [
        DcvMethod::DnsChange,
        DcvMethod::AcmeDns01,
        DcvMethod::AcmeDnsAccount01,
        DcvMethod::DnsPersist01,
        DcvMethod::AcmeHttp01,
        DcvMethod::AcmeTlsAlpn01,
        DcvMethod::WebsiteChange,
        DcvMethod::ContactEmailTxt,
        DcvMethod::ContactPhoneTxt,
        DcvMethod::ContactEmailCaa,
        DcvMethod::ContactPhoneCaa,
        DcvMethod::IpAddress,
        DcvMethod::ReverseAddressLookup,
    ];

    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            DcvMethod::DnsChange => "dns-change",
            DcvMethod::AcmeDns01 => "acme-dns-01",
            DcvMethod::AcmeDnsAccount01 => "acme-dns-account-01",
            DcvMethod::DnsPersist01 => "dns-persist-01",
            DcvMethod::AcmeHttp01 => "acme-http-01",
            DcvMethod::AcmeTlsAlpn01 => "acme-tls-alpn-01",
            DcvMethod::WebsiteChange => "website-change",
            DcvMethod::ContactEmailTxt => "contact-email-txt",
            DcvMethod::ContactPhoneTxt => "contact-phone-txt",
            DcvMethod::ContactEmailCaa => "contact-email-caa",
            DcvMethod::ContactPhoneCaa => "contact-phone-caa",
            DcvMethod::IpAddress => "ip-address",
            DcvMethod::ReverseAddressLookup => "reverse-address-lookup",
            DcvMethod::Other(name) => name,
        }
    }
}

impl fmt::Display for DcvMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DcvMethod {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(DcvMethod::KNOWN
            .iter()
            .find(|method| method.as_str() == s)
            .cloned()
            .unwrap_or_else(|| DcvMethod::Other(s.to_owned())))
    }
}

impl Serialize for DcvMethod {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for DcvMethod {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let Ok(method) = text.parse();
        Ok(method)
    }
}

#[cfg(test)]
mod tests;
