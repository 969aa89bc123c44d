//! ACME dns-01 (RFC 8555 §8.4; BR 3.2.2.4.7 through ACME): the record name, the expected TXT value
//! and the match over the TXT RRset.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::dns_change::authorization_domain_name;

/// The label under which dns-01 TXT records live (RFC 8555 §8.4).
pub const CHALLENGE_LABEL: &str = "_acme-challenge";

/// Length of an unpadded base64url SHA-256 digest: ⌈256 / 6⌉ = 43 characters (RFC 8555 §8.4).
pub const DIGEST_LEN: usize = 43;

/// The validation domain name: `_acme-challenge.<FQDN>`, a wildcard FQDN without its `*.`
/// (RFC 8555 §8.4; RFC 8555 §7.1.3: a wildcard authorization is for the base name).
pub fn challenge_name(fqdn: &str) -> String {
    format!("{CHALLENGE_LABEL}.{}", authorization_domain_name(fqdn))
}

/// The TXT value for a key authorization: base64url(SHA-256(key authorization)), unpadded, 43
/// characters (RFC 8555 §8.4). The key authorization is `token "." base64url(JWK thumbprint)`
/// (RFC 8555 §8.1, RFC 7638); it is hashed as given.
pub fn expected_digest(key_authorization: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, key_authorization.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// Whether `value` is already a dns-01 digest: 43 unpadded base64url characters that decode to
/// 32 bytes with no stray trailing bits (RFC 4648 §5, §3.5). A key authorization is never one: it
/// always holds a `.` (RFC 8555 §8.1).
pub fn is_digest(value: &str) -> bool {
    value.len() == DIGEST_LEN
        && URL_SAFE_NO_PAD
            .decode(value)
            .is_ok_and(|bytes| bytes.len() == 32)
}

/// The expected TXT value from what the primary sent: a digest ([`is_digest`]) is used as is;
/// anything else is taken as a key authorization and hashed ([`expected_digest`]). So a malformed
/// input yields a digest nobody published and the check fails rather than matching it literally.
pub fn expected_value(key_authorization_or_digest: &str) -> String {
    if is_digest(key_authorization_or_digest) {
        key_authorization_or_digest.to_owned()
    } else {
        expected_digest(key_authorization_or_digest)
    }
}

/// The index of the first TXT record (strings concatenated) that equals `expected` byte for byte;
/// the check passes if any does (RFC 8555 §8.4: "verify that the contents of one of the TXT
/// records match the digest value"). An empty `expected` matches nothing.
pub fn matches(txt_values: &[Vec<u8>], expected: &str) -> Option<usize> {
    if expected.is_empty() {
        return None;
    }
    txt_values
        .iter()
        .position(|value| value.as_slice() == expected.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8555 §8.3's example token and RFC 7638 §3.1's thumbprint, joined as RFC 8555 §8.1 says.
    const KEY_AUTHORIZATION: &str = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.\
                                     NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";
    /// `printf '%s' "$KEY_AUTHORIZATION" | openssl dgst -sha256 -binary | basenc --base64url`,
    /// padding removed.
    const DIGEST: &str = "ZTRx1Ckl1-tM05o5zaizTTA0yUy5AGereMgSNWC6Ll8";
    /// DIGEST with its last character's 2 unused bits not zero (`8` = 111100, `9` = 111101).
    const NON_CANONICAL: &str = "ZTRx1Ckl1-tM05o5zaizTTA0yUy5AGereMgSNWC6Ll9";
    /// DIGEST in the standard base64 alphabet (`+` for `-`).
    const STANDARD_ALPHABET: &str = "ZTRx1Ckl1+tM05o5zaizTTA0yUy5AGereMgSNWC6Ll8";

    #[test]
    fn challenge_names() {
        #[rustfmt::skip]
        let cases = [
            ("plain FQDN", "example.org", "_acme-challenge.example.org"),
            ("subdomain", "www.example.org", "_acme-challenge.www.example.org"),
            ("wildcard uses the base name", "*.example.org", "_acme-challenge.example.org"),
            ("only one *. is stripped", "*.*.example.org", "_acme-challenge.*.example.org"),
        ];
        for (name, fqdn, want) in cases {
            assert_eq!(challenge_name(fqdn), want, "{name}");
        }
    }

    #[test]
    fn digests() {
        #[rustfmt::skip]
        let cases = [
            ("RFC 8555 token + RFC 7638 thumbprint", KEY_AUTHORIZATION, DIGEST),
            ("empty input: SHA-256 of nothing", "", "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"),
        ];
        for (name, key_authorization, want) in cases {
            let got = expected_digest(key_authorization);
            assert_eq!(got, want, "{name}");
            assert_eq!(got.len(), DIGEST_LEN, "{name}");
        }
    }

    #[test]
    fn digest_recognition() {
        let padded = format!("{DIGEST}=");
        #[rustfmt::skip]
        let cases = [
            ("digest", DIGEST, true),
            ("key authorization", KEY_AUTHORIZATION, false),
            ("non-canonical trailing bits", NON_CANONICAL, false),
            ("padded", padded.as_str(), false),
            ("standard base64 alphabet", STANDARD_ALPHABET, false),
            ("42 characters", &DIGEST[..42], false),
            ("empty", "", false),
        ];
        for (name, value, want) in cases {
            assert_eq!(is_digest(value), want, "{name}");
        }
    }

    #[test]
    fn expected_value_accepts_either_form() {
        let padded = format!("{DIGEST}=");
        #[rustfmt::skip]
        let cases = [
            ("key authorization is hashed", KEY_AUTHORIZATION, DIGEST.to_owned()),
            ("digest is kept", DIGEST, DIGEST.to_owned()),
            ("non-canonical digest is hashed", NON_CANONICAL, expected_digest(NON_CANONICAL)),
            ("padded digest is hashed", padded.as_str(), expected_digest(&padded)),
            ("standard alphabet is hashed", STANDARD_ALPHABET, expected_digest(STANDARD_ALPHABET)),
        ];
        for (name, input, want) in cases {
            assert_eq!(expected_value(input), want, "{name}");
        }
    }

    /// The TXT records of one lookup, each one RR's strings concatenated.
    type Records = Vec<Vec<u8>>;

    #[test]
    fn txt_matching() {
        let digest = DIGEST.as_bytes().to_vec();
        let other = |value: &str| value.as_bytes().to_vec();
        #[rustfmt::skip]
        let cases: Vec<(&str, Records, &str, Option<usize>)> = vec![
            ("single match", vec![digest.clone()], DIGEST, Some(0)),
            ("any of several", vec![other("a"), digest.clone(), other("c")], DIGEST, Some(1)),
            ("first of two matches", vec![digest.clone(), digest], DIGEST, Some(0)),
            ("no records", vec![], DIGEST, None),
            ("wrong value", vec![other("a")], DIGEST, None),
            ("case differs", vec![other(&DIGEST.to_ascii_lowercase())], DIGEST, None),
            ("surrounding space", vec![other(&format!(" {DIGEST}"))], DIGEST, None),
            ("digest embedded", vec![other(&format!("x{DIGEST}"))], DIGEST, None),
            ("key authorization published instead", vec![other(KEY_AUTHORIZATION)], DIGEST, None),
            ("empty expected matches nothing", vec![vec![]], "", None),
        ];
        for (name, values, expected, want) in cases {
            assert_eq!(matches(&values, expected), want, "{name}");
        }
    }
}
