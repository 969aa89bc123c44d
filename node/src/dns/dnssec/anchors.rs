//! Trust anchors: the IANA root KSKs (KSK-2017 and KSK-2024, as DS records from IANA's
//! root-anchors.xml), or a file of DS / DNSKEY lines in zone-file presentation format.

use std::str::FromStr as _;

use data_encoding::{BASE64, HEXLOWER_PERMISSIVE};
use hickory_proto::dnssec::rdata::{DNSKEY, DS};
use hickory_proto::dnssec::{Algorithm, DigestType, PublicKeyBuf};
use hickory_proto::rr::Name;

use crate::dns::InvalidName;

/// The IANA root anchors: owner, key tag, algorithm, digest type, digest.
const IANA_ROOT: [(u16, u8, u8, &str); 2] = [
    (
        20326,
        8,
        2,
        "E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D",
    ),
    (
        38696,
        8,
        2,
        "683D2D0ACB8C9B712A1948B27F741219298D0A450D612C483AF444A4C0FB2B16",
    ),
];

/// Where validation starts: the zone and what vouches for its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustAnchors {
    /// The anchored zone (the root for the IANA anchors).
    pub zone: Name,
    /// DS records for the zone's KSKs.
    pub ds: Vec<DS>,
    /// DNSKEYs trusted as they are.
    pub keys: Vec<DNSKEY>,
}

/// Why an anchor file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnchorError {
    /// A line does not parse.
    #[error("trust anchor line {line}: {detail}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        detail: LineError,
    },
    /// The file names no anchor.
    #[error("trust anchor file holds no DS or DNSKEY line")]
    Empty,
    /// Anchors for more than one zone.
    #[error("trust anchors for both {first} and {second}; one zone per file")]
    SeveralZones {
        /// The first zone (boxed, as `second`: keeps the error small).
        first: Box<Name>,
        /// Another zone.
        second: Box<Name>,
    },
}

/// What is wrong with one line of an anchor file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// Neither a DS nor a DNSKEY record.
    #[error("expected a DS or DNSKEY record")]
    NotAnAnchor,
    /// No owner name.
    #[error("no owner name")]
    NoOwner,
    /// The owner is not a domain name.
    #[error("owner {owner:?}: {source}")]
    Owner {
        /// The text given.
        owner: String,
        /// Why it is not a name.
        source: InvalidName,
    },
    /// A number field is missing or not a number.
    #[error("bad or missing {what}")]
    Number {
        /// The field.
        what: &'static str,
    },
    /// A number field does not fit its octet.
    #[error("{what} out of range")]
    OutOfRange {
        /// The field.
        what: &'static str,
    },
    /// The DS digest is not hexadecimal.
    #[error("digest is not hex: {0}")]
    DigestNotHex(data_encoding::DecodeError),
    /// The DS digest is empty.
    #[error("empty digest")]
    EmptyDigest,
    /// The DNSKEY's key is not base64.
    #[error("key is not base64: {0}")]
    KeyNotBase64(data_encoding::DecodeError),
}

impl TrustAnchors {
    /// The IANA root anchors, KSK-2017 and KSK-2024.
    pub fn iana_root() -> Self {
        let ds = IANA_ROOT
            .iter()
            .filter_map(|(tag, algorithm, digest_type, digest)| {
                let digest = HEXLOWER_PERMISSIVE
                    .decode(digest.to_ascii_lowercase().as_bytes())
                    .ok()?;
                Some(DS::new(
                    *tag,
                    Algorithm::from_u8(*algorithm),
                    DigestType::from(*digest_type),
                    digest,
                ))
            })
            .collect();
        Self {
            zone: Name::root(),
            ds,
            keys: Vec::new(),
        }
    }

    /// Parses `owner [ttl] [IN] DS tag alg digest-type hex` and `owner [ttl] [IN] DNSKEY flags 3
    /// alg base64` lines; `;` starts a comment.
    pub fn parse(text: &str) -> Result<Self, AnchorError> {
        let mut anchors: Option<Self> = None;
        for (index, raw) in text.lines().enumerate() {
            let line = raw.split(';').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let error = |detail: LineError| AnchorError::Line {
                line: index + 1,
                detail,
            };
            let fields: Vec<&str> = line.split_whitespace().collect();
            let Some(position) = fields
                .iter()
                .position(|f| f.eq_ignore_ascii_case("DS") || f.eq_ignore_ascii_case("DNSKEY"))
            else {
                return Err(error(LineError::NotAnAnchor));
            };
            let owner = fields.first().ok_or_else(|| error(LineError::NoOwner))?;
            let mut zone = Name::from_str(owner).map_err(|e| {
                error(LineError::Owner {
                    owner: (*owner).to_owned(),
                    source: e.into(),
                })
            })?;
            zone.set_fqdn(true);
            let rdata = &fields[position + 1..];
            let entry = anchors.get_or_insert_with(|| Self {
                zone: zone.clone(),
                ds: Vec::new(),
                keys: Vec::new(),
            });
            if entry.zone != zone {
                return Err(AnchorError::SeveralZones {
                    first: Box::new(entry.zone.clone()),
                    second: Box::new(zone.clone()),
                });
            }
            if fields[position].eq_ignore_ascii_case("DS") {
                entry.ds.push(ds(rdata).map_err(error)?);
            } else {
                entry.keys.push(dnskey(rdata).map_err(error)?);
            }
        }
        anchors.ok_or(AnchorError::Empty)
    }
}

/// The `i`-th RDATA field as a number.
fn number(rdata: &[&str], i: usize, what: &'static str) -> Result<u16, LineError> {
    rdata
        .get(i)
        .and_then(|f| f.parse().ok())
        .ok_or(LineError::Number { what })
}

/// The `i`-th RDATA field as an octet.
fn octet(rdata: &[&str], i: usize, what: &'static str) -> Result<u8, LineError> {
    u8::try_from(number(rdata, i, what)?).map_err(|_| LineError::OutOfRange { what })
}

/// A DS RDATA: `tag alg digest-type hex...`.
fn ds(rdata: &[&str]) -> Result<DS, LineError> {
    let tag = number(rdata, 0, "key tag")?;
    let algorithm = octet(rdata, 1, "algorithm")?;
    let digest_type = octet(rdata, 2, "digest type")?;
    let digest = HEXLOWER_PERMISSIVE
        .decode(rdata.get(3..).unwrap_or_default().concat().as_bytes())
        .map_err(LineError::DigestNotHex)?;
    if digest.is_empty() {
        return Err(LineError::EmptyDigest);
    }
    Ok(DS::new(
        tag,
        Algorithm::from_u8(algorithm),
        DigestType::from(digest_type),
        digest,
    ))
}

/// A DNSKEY RDATA: `flags 3 alg base64...`.
fn dnskey(rdata: &[&str]) -> Result<DNSKEY, LineError> {
    let flags = number(rdata, 0, "flags")?;
    let algorithm = octet(rdata, 2, "algorithm")?;
    let key = BASE64
        .decode(rdata.get(3..).unwrap_or_default().concat().as_bytes())
        .map_err(LineError::KeyNotBase64)?;
    Ok(DNSKEY::with_flags(
        flags,
        PublicKeyBuf::new(key, Algorithm::from_u8(algorithm)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iana_root_anchors_are_ksk_2017_and_ksk_2024() {
        let anchors = TrustAnchors::iana_root();
        assert!(anchors.zone.is_root());
        let tags: Vec<u16> = anchors.ds.iter().map(DS::key_tag).collect();
        assert_eq!(tags, vec![20326, 38696]);
        assert!(
            anchors
                .ds
                .iter()
                .all(|ds| ds.algorithm() == Algorithm::RSASHA256 && ds.digest().len() == 32)
        );
    }

    #[test]
    fn ds_and_dnskey_lines_parse_with_comments_and_optional_ttl_and_class() {
        let text = "; anchors\n\nexample. 3600 IN DS 12345 13 2 0ABC DEF0 ; split digest\nexample. DNSKEY 257 3 13 AAEC Aw==\n";
        let anchors = TrustAnchors::parse(text).unwrap();
        assert_eq!(anchors.zone, Name::from_ascii("example.").unwrap());
        assert_eq!(anchors.ds.len(), 1);
        assert_eq!(anchors.ds[0].digest(), &[0x0a, 0xbc, 0xde, 0xf0]);
        assert_eq!(anchors.keys.len(), 1);
        assert!(anchors.keys[0].secure_entry_point());
    }

    #[test]
    fn bad_anchor_files_name_the_line() {
        let cases: [(&str, &str); 4] = [
            ("example. IN A 192.0.2.1\n", "line 1"),
            ("; nothing\nexample. DS 1 13 2 zz\n", "line 2"),
            ("example. DS 1 13\n", "line 1"),
            (
                "example. DS 1 13 2 00\nother. DS 1 13 2 00\n",
                "one zone per file",
            ),
        ];
        for (text, expected) in cases {
            let error = TrustAnchors::parse(text).unwrap_err().to_string();
            assert!(error.contains(expected), "{text:?}: {error}");
        }
        assert_eq!(TrustAnchors::parse("; empty\n"), Err(AnchorError::Empty));
    }
}
