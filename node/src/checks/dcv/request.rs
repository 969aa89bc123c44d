//! The DCV check a target asks for, decoded strictly from the v1 wire `DcvCheck` (a bag of
//! optional fields) into one variant per method carrying exactly that method's fields, so the
//! checks never re-check at run time which fields are there.

use std::net::IpAddr;

use hickory_proto::rr::RecordType;
use mpic_protocol::{DcvCheck, DcvMethod};

use super::dns_change::{self, RandomValueError};
use super::ip_address::{self, AddressMethodError};

/// A DCV check, routed by the kind of lookup its method makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DcvRequest {
    /// A DNS-based method (run by `dcv::lookup`).
    Dns(DnsDcv),
    /// An HTTP-based method (run by `checks::http`).
    Http(HttpDcv),
    /// ACME tls-alpn-01 (run by `checks::tls_alpn`).
    TlsAlpn(TlsAlpnDcv),
}

/// A DNS-based DCV method with its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsDcv {
    /// BR 3.2.2.4.7 DNS Change.
    DnsChange(DnsChange),
    /// RFC 8555 §8.4 dns-01.
    AcmeDns01 {
        /// The key authorization, or its digest as the TXT value.
        key_authorization: String,
    },
    /// BR 3.2.2.4.21 dns-account-01.
    AcmeDnsAccount01 {
        /// The key authorization, or its digest as the TXT value.
        key_authorization: String,
        /// The ACME account URI the challenge name is derived from.
        account_uri: String,
    },
    /// BR 3.2.2.4.22 dns-persist-01.
    DnsPersist01(DnsPersist),
    /// BR 3.2.2.4.14: an email contact in a `_validation-contactemail` TXT record.
    ContactEmailTxt {
        /// The contact the primary expects, if it names one.
        expected: Option<String>,
    },
    /// BR 3.2.2.4.16: a phone contact in a `_validation-contactphone` TXT record.
    ContactPhoneTxt {
        /// The contact the primary expects, if it names one.
        expected: Option<String>,
    },
    /// BR 3.2.2.4.13: an email contact in the relevant CAA RRset.
    ContactEmailCaa {
        /// The contact the primary expects, if it names one.
        expected: Option<String>,
    },
    /// BR 3.2.2.4.17: a phone contact in the relevant CAA RRset.
    ContactPhoneCaa {
        /// The contact the primary expects, if it names one.
        expected: Option<String>,
    },
    /// BR 3.2.2.4.8 IP Address.
    IpAddress {
        /// The addresses the Applicant was validated for.
        expected: Vec<IpAddr>,
        /// Look in this type alone; `None`: A then AAAA.
        record_type: Option<AddressRecordType>,
    },
    /// BR 3.2.2.5.3 reverse address lookup.
    ReverseAddressLookup {
        /// The FQDN the PTR record must name (comparable form).
        expected: String,
    },
}

/// The fields of a DNS Change check (BR 3.2.2.4.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsChange {
    /// The Random Value or Request Token (checked printable and long enough).
    pub expected: String,
    /// The `_prefix` label to look under, if any.
    pub prefix: Option<String>,
    /// Look in this type alone; `None`: TXT, CNAME, then CAA.
    pub record_type: Option<ChangeRecordType>,
    /// The record value must equal `expected` (not merely contain it).
    pub exact_match: bool,
    /// TXT and CAA values compare ignoring ASCII case.
    pub case_insensitive: bool,
}

/// The fields of a dns-persist-01 check (BR 3.2.2.4.22).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsPersist {
    /// The issuer domain the record must name.
    pub issuer_domain: String,
    /// The account URI the record must name.
    pub account_uri: String,
    /// The request says the certificate is for a wildcard.
    pub wildcard: bool,
}

/// The record types DNS Change looks in (BR 3.2.2.4.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeRecordType {
    /// A TXT record.
    Txt,
    /// A CNAME record.
    Cname,
    /// A CAA record.
    Caa,
}

impl ChangeRecordType {
    /// The DNS type.
    pub fn record_type(self) -> RecordType {
        match self {
            Self::Txt => RecordType::TXT,
            Self::Cname => RecordType::CNAME,
            Self::Caa => RecordType::CAA,
        }
    }
}

/// The record types the IP Address method looks in (BR 3.2.2.4.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressRecordType {
    /// An A record.
    A,
    /// An AAAA record.
    Aaaa,
}

impl AddressRecordType {
    /// The DNS type.
    pub fn record_type(self) -> RecordType {
        match self {
            Self::A => RecordType::A,
            Self::Aaaa => RecordType::AAAA,
        }
    }
}

/// An HTTP-based DCV method with its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpDcv {
    /// RFC 8555 §8.3 http-01 (BR 3.2.2.4.19).
    AcmeHttp01 {
        /// The challenge token (the file name).
        token: String,
        /// The key authorization the file must hold.
        key_authorization: String,
    },
    /// BR 3.2.2.4.18 Agreed-Upon Change to Website v2.
    WebsiteChange {
        /// The file name under `/.well-known/pki-validation/`.
        file: String,
        /// The Random Value or Request Token the file must hold.
        expected: String,
        /// The scheme to fetch with.
        scheme: UrlScheme,
    },
}

/// The scheme of a website-change URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlScheme {
    /// `http` (the default).
    Http,
    /// `https`.
    Https,
}

impl UrlScheme {
    /// The scheme as written in a URL.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }
}

/// The fields of a tls-alpn-01 check (RFC 8737).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsAlpnDcv {
    /// The SHA-256 digest the acmeIdentifier extension must carry.
    pub digest: [u8; 32],
}

/// Longest key authorization tls-alpn-01 accepts.
const MAX_KEY_AUTHORIZATION_LEN: usize = 1024;

/// Why a wire `DcvCheck` does not decode into a [`DcvRequest`]; each names the field at fault.
/// Answered `unsupported` ([`DecodeError::Unsupported`]) or `malformed` (all others).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The method is not one this node runs.
    #[error("DCV method {method:?} is not available in this node version")]
    Unsupported {
        /// The method's wire name.
        method: String,
    },
    /// acme-dns-01 or acme-dns-account-01 without `key_authorization` or `expected`.
    #[error("acme DNS methods need key_authorization (or the digest as expected)")]
    AcmeDnsKeyAuthorization,
    /// acme-dns-account-01 without `account_uri`.
    #[error("acme-dns-account-01 needs account_uri")]
    AccountUri,
    /// dns-change without `expected`.
    #[error("dns-change needs expected (the Random Value or Request Token)")]
    DnsChangeExpected,
    /// dns-change with an `expected` that can never match.
    #[error("expected: {0}")]
    RandomValue(#[source] RandomValueError),
    /// dns-change with a `record_type` other than TXT, CNAME or CAA.
    #[error(
        "record_type {given:?}: dns-change looks in TXT, CNAME or CAA records only (BR 3.2.2.4.7)"
    )]
    DnsChangeRecordType {
        /// The type as given.
        given: String,
    },
    /// dns-persist-01 without `issuer_domain` or `account_uri`.
    #[error("dns-persist-01 needs issuer_domain and account_uri")]
    PersistIssuerAndAccount,
    /// ip-address or reverse-address-lookup with a missing or unusable `expected`.
    #[error(transparent)]
    Address(#[from] AddressMethodError),
    /// ip-address with a `record_type` other than A or AAAA.
    #[error("record_type {given:?}: ip-address looks in A or AAAA records only (BR 3.2.2.4.8)")]
    AddressRecordType {
        /// The type as given.
        given: String,
    },
    /// acme-http-01 without `token`.
    #[error("acme-http-01 needs `token`")]
    Http01Token,
    /// acme-http-01 without `key_authorization`.
    #[error("acme-http-01 needs `key_authorization`")]
    Http01KeyAuthorization,
    /// website-change for a wildcard certificate.
    #[error(
        "website-change cannot validate a wildcard certificate (BR 3.2.2.4.18); use a DNS method"
    )]
    WebsiteChangeWildcard,
    /// website-change without `token`.
    #[error("website-change needs `token` (the file name)")]
    WebsiteChangeToken,
    /// website-change without `expected`.
    #[error("website-change needs `expected` (Random Value or token)")]
    WebsiteChangeExpected,
    /// website-change with a `url_scheme` other than http or https.
    #[error("url_scheme {given:?}: website-change uses http or https (BR 3.2.2.4.18)")]
    UrlScheme {
        /// The scheme as given.
        given: String,
    },
    /// tls-alpn-01 for a wildcard certificate.
    #[error("tls-alpn-01 cannot validate a wildcard certificate (RFC 8555 §7.1.3)")]
    TlsAlpnWildcard,
    /// tls-alpn-01 with a `key_authorization` that is empty, too long or unprintable.
    #[error("key_authorization must be 1-1024 printable ASCII characters")]
    TlsAlpnKeyAuthorizationForm,
    /// tls-alpn-01 with an `expected` that is not 64 hex digits.
    #[error("expected must be the SHA-256 of the key authorization as 64 hex digits")]
    TlsAlpnExpectedForm,
    /// tls-alpn-01 with a `key_authorization` and an `expected` that disagree.
    #[error("expected is not the SHA-256 of key_authorization; send one or make them agree")]
    TlsAlpnDisagree,
    /// tls-alpn-01 without `key_authorization` or `expected`.
    #[error("acme-tls-alpn-01 needs `key_authorization` (or `expected`)")]
    TlsAlpnKeyAuthorization,
}

impl DcvRequest {
    /// Decodes the wire check; the first missing or invalid field is the error. This is the one
    /// place a method is matched: the variant decides which check runs.
    pub fn decode(dcv: &DcvCheck) -> Result<Self, DecodeError> {
        let expected = || dcv.expected.clone();
        let dns = match &dcv.method {
            DcvMethod::DnsChange => DnsDcv::DnsChange(decode_dns_change(dcv)?),
            DcvMethod::AcmeDns01 => DnsDcv::AcmeDns01 {
                key_authorization: acme_key_authorization(dcv)?,
            },
            DcvMethod::AcmeDnsAccount01 => DnsDcv::AcmeDnsAccount01 {
                key_authorization: acme_key_authorization(dcv)?,
                account_uri: dcv.account_uri.clone().ok_or(DecodeError::AccountUri)?,
            },
            DcvMethod::DnsPersist01 => decode_persist(dcv)?,
            DcvMethod::ContactEmailTxt => DnsDcv::ContactEmailTxt {
                expected: expected(),
            },
            DcvMethod::ContactPhoneTxt => DnsDcv::ContactPhoneTxt {
                expected: expected(),
            },
            DcvMethod::ContactEmailCaa => DnsDcv::ContactEmailCaa {
                expected: expected(),
            },
            DcvMethod::ContactPhoneCaa => DnsDcv::ContactPhoneCaa {
                expected: expected(),
            },
            DcvMethod::IpAddress => decode_ip_address(dcv)?,
            DcvMethod::ReverseAddressLookup => DnsDcv::ReverseAddressLookup {
                expected: ip_address::expected_domain(dcv.expected.as_deref())?,
            },
            DcvMethod::AcmeHttp01 => return Ok(Self::Http(decode_http01(dcv)?)),
            DcvMethod::WebsiteChange => return Ok(Self::Http(decode_website_change(dcv)?)),
            DcvMethod::AcmeTlsAlpn01 => return Ok(Self::TlsAlpn(decode_tls_alpn(dcv)?)),
            other => {
                return Err(DecodeError::Unsupported {
                    method: other.as_str().to_owned(),
                });
            }
        };
        Ok(Self::Dns(dns))
    }
}

impl DnsDcv {
    /// The method's wire value.
    pub fn method(&self) -> DcvMethod {
        match self {
            Self::DnsChange(_) => DcvMethod::DnsChange,
            Self::AcmeDns01 { .. } => DcvMethod::AcmeDns01,
            Self::AcmeDnsAccount01 { .. } => DcvMethod::AcmeDnsAccount01,
            Self::DnsPersist01(_) => DcvMethod::DnsPersist01,
            Self::ContactEmailTxt { .. } => DcvMethod::ContactEmailTxt,
            Self::ContactPhoneTxt { .. } => DcvMethod::ContactPhoneTxt,
            Self::ContactEmailCaa { .. } => DcvMethod::ContactEmailCaa,
            Self::ContactPhoneCaa { .. } => DcvMethod::ContactPhoneCaa,
            Self::IpAddress { .. } => DcvMethod::IpAddress,
            Self::ReverseAddressLookup { .. } => DcvMethod::ReverseAddressLookup,
        }
    }
}

fn decode_persist(dcv: &DcvCheck) -> Result<DnsDcv, DecodeError> {
    match (&dcv.issuer_domain, &dcv.account_uri) {
        (Some(issuer_domain), Some(account_uri)) => Ok(DnsDcv::DnsPersist01(DnsPersist {
            issuer_domain: issuer_domain.clone(),
            account_uri: account_uri.clone(),
            wildcard: dcv.wildcard,
        })),
        _ => Err(DecodeError::PersistIssuerAndAccount),
    }
}

fn decode_ip_address(dcv: &DcvCheck) -> Result<DnsDcv, DecodeError> {
    let text = dcv
        .expected
        .as_deref()
        .ok_or(AddressMethodError::NoExpectedAddress)?;
    Ok(DnsDcv::IpAddress {
        expected: ip_address::parse_expected_addresses(text)?,
        record_type: address_record_type(dcv.record_type.as_deref())?,
    })
}

fn acme_key_authorization(dcv: &DcvCheck) -> Result<String, DecodeError> {
    dcv.key_authorization
        .clone()
        .or_else(|| dcv.expected.clone())
        .ok_or(DecodeError::AcmeDnsKeyAuthorization)
}

fn decode_dns_change(dcv: &DcvCheck) -> Result<DnsChange, DecodeError> {
    let expected = dcv.expected.clone().ok_or(DecodeError::DnsChangeExpected)?;
    // A value that can never match (too short, unprintable) is the request's fault: say so
    // before looking anything up, rather than reporting it "not found".
    dns_change::validate_random_value(&expected).map_err(DecodeError::RandomValue)?;
    let record_type = match dcv.record_type.as_deref() {
        None => None,
        Some(text) if text.eq_ignore_ascii_case("TXT") => Some(ChangeRecordType::Txt),
        Some(text) if text.eq_ignore_ascii_case("CNAME") => Some(ChangeRecordType::Cname),
        Some(text) if text.eq_ignore_ascii_case("CAA") => Some(ChangeRecordType::Caa),
        Some(other) => {
            return Err(DecodeError::DnsChangeRecordType {
                given: other.to_owned(),
            });
        }
    };
    Ok(DnsChange {
        expected,
        prefix: dcv.prefix.clone(),
        record_type,
        exact_match: dcv.exact_match,
        case_insensitive: dcv.case_insensitive,
    })
}

fn address_record_type(text: Option<&str>) -> Result<Option<AddressRecordType>, DecodeError> {
    match text {
        None => Ok(None),
        Some(text) if text.eq_ignore_ascii_case("A") => Ok(Some(AddressRecordType::A)),
        Some(text) if text.eq_ignore_ascii_case("AAAA") => Ok(Some(AddressRecordType::Aaaa)),
        Some(other) => Err(DecodeError::AddressRecordType {
            given: other.to_owned(),
        }),
    }
}

fn decode_http01(dcv: &DcvCheck) -> Result<HttpDcv, DecodeError> {
    Ok(HttpDcv::AcmeHttp01 {
        token: dcv.token.clone().ok_or(DecodeError::Http01Token)?,
        key_authorization: dcv
            .key_authorization
            .clone()
            .ok_or(DecodeError::Http01KeyAuthorization)?,
    })
}

fn decode_website_change(dcv: &DcvCheck) -> Result<HttpDcv, DecodeError> {
    if dcv.wildcard {
        return Err(DecodeError::WebsiteChangeWildcard);
    }
    let file = dcv.token.clone().ok_or(DecodeError::WebsiteChangeToken)?;
    let expected = dcv
        .expected
        .clone()
        .ok_or(DecodeError::WebsiteChangeExpected)?;
    let scheme = match dcv.url_scheme.as_deref() {
        None | Some("http") => UrlScheme::Http,
        Some("https") => UrlScheme::Https,
        Some(other) => {
            return Err(DecodeError::UrlScheme {
                given: other.to_owned(),
            });
        }
    };
    Ok(HttpDcv::WebsiteChange {
        file,
        expected,
        scheme,
    })
}

/// The digest the acmeIdentifier must carry: SHA-256 of `key_authorization`, or `expected` as 64
/// hex digits (the form Open MPIC sends); when both are given they must agree.
fn decode_tls_alpn(dcv: &DcvCheck) -> Result<TlsAlpnDcv, DecodeError> {
    if dcv.wildcard {
        return Err(DecodeError::TlsAlpnWildcard);
    }
    let from_key = match dcv.key_authorization.as_deref() {
        Some(key)
            if key.is_empty()
                || key.len() > MAX_KEY_AUTHORIZATION_LEN
                || !key.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            return Err(DecodeError::TlsAlpnKeyAuthorizationForm);
        }
        Some(key) => Some(crate::checks::tls_alpn::certificate::expected_digest(key)),
        None => None,
    };
    let from_hex = match dcv.expected.as_deref() {
        Some(text) => {
            let mut digest = [0u8; 32];
            hex::decode_to_slice(text, &mut digest)
                .map_err(|_| DecodeError::TlsAlpnExpectedForm)?;
            Some(digest)
        }
        None => None,
    };
    match (from_key, from_hex) {
        (Some(a), Some(b)) if a != b => Err(DecodeError::TlsAlpnDisagree),
        (Some(digest), _) | (None, Some(digest)) => Ok(TlsAlpnDcv { digest }),
        (None, None) => Err(DecodeError::TlsAlpnKeyAuthorization),
    }
}

#[cfg(test)]
mod tests;
