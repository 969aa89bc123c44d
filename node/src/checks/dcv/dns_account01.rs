//! ACME dns-account-01 (BR 3.2.2.4.21, draft-ietf-acme-dns-account-label): the account-scoped
//! record name; the TXT value and its match are dns-01's.
//!
//! The BR pins draft-ietf-acme-dns-account-label **-00**. The label built here is the -01 form
//! Boulder implements (`_` + lowercase base32 of the first 10 bytes of SHA-256(account URL)); that
//! -00 uses the same label is *unconfirmed* (standards.md §4). Both drafts' example account URL
//! gives the label `_ujmmovf2vn55tgye`, which the tests pin.

pub use super::acme_dns01::{expected_digest, expected_value, matches};

/// Bytes of SHA-256(account URL) the label keeps (draft-ietf-acme-dns-account-label-01 §3.2):
/// 80 bits, which base32 spells in exactly 16 characters with no padding.
pub const LABEL_DIGEST_BYTES: usize = 10;

/// The account label: `_` + lowercase, unpadded base32 (RFC 4648 §6) of the first
/// [`LABEL_DIGEST_BYTES`] bytes of SHA-256(account URI) (draft-ietf-acme-dns-account-label-01
/// §3.2, as Boulder). The URI is hashed byte for byte, not normalised: the CA's own account URL
/// is what the client was told.
pub fn account_label(account_uri: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, account_uri.as_bytes());
    let prefix = digest
        .as_ref()
        .get(..LABEL_DIGEST_BYTES)
        .unwrap_or_default();
    format!("_{}", base32_lower(prefix))
}

/// The validation domain name: `<account label>._acme-challenge.<FQDN>`, a wildcard FQDN without
/// its `*.` (draft-ietf-acme-dns-account-label-01 §3.2; BR 3.2.2.4.21).
pub fn challenge_name(fqdn: &str, account_uri: &str) -> String {
    format!(
        "{}.{}",
        account_label(account_uri),
        super::acme_dns01::challenge_name(fqdn)
    )
}

/// RFC 4648 §6 base32, lowercase alphabet, no padding (the draft's label form).
fn base32_lower(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    // The low `bits` bits of `buffer` are pending (at most 4 + 8 = 12); higher bits were already
    // written and are shifted out or masked off, never read again.
    let mut buffer: u16 = 0;
    let mut bits: u32 = 0;
    for &byte in bytes {
        buffer = (buffer << 8) | u16::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            // Masked to 5 bits, so the index is always in the 32-entry alphabet.
            out.push(char::from(ALPHABET[usize::from((buffer >> bits) & 0x1f)]));
        }
    }
    if bits > 0 {
        out.push(char::from(
            ALPHABET[usize::from((buffer << (5 - bits)) & 0x1f)],
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example account URL of draft-ietf-acme-dns-account-label-00/-01, used by Boulder.
    const EXAMPLE_ACCOUNT: &str = "https://example.com/acme/acct/ExampleAccount";

    #[test]
    fn base32_rfc4648_section_10_vectors() {
        // RFC 4648 §10 vectors, lowercased, padding removed.
        let cases = [
            ("empty", "", ""),
            ("f", "f", "my"),
            ("fo", "fo", "mzxq"),
            ("foo", "foo", "mzxw6"),
            ("foob", "foob", "mzxw6yq"),
            ("fooba", "fooba", "mzxw6ytb"),
            ("foobar", "foobar", "mzxw6ytboi"),
        ];
        for (name, input, want) in cases {
            assert_eq!(base32_lower(input.as_bytes()), want, "{name}");
        }
    }

    #[test]
    fn base32_all_bits() {
        assert_eq!(base32_lower(&[0xff; 5]), "77777777");
        assert_eq!(base32_lower(&[0x00; 5]), "aaaaaaaa");
        assert_eq!(base32_lower(&[0xff]), "74");
    }

    #[test]
    fn account_labels() {
        #[rustfmt::skip]
        let cases = [
            ("draft example", EXAMPLE_ACCOUNT, "_ujmmovf2vn55tgye"),
            ("Boulder local development", "http://localhost:4000/acme/acct/1", "_vkbgbqfhr6yv2asd"),
            ("standards.md persist example", "https://authority.example/acct/123", "_6nfdwqln26ehqe4a"),
        ];
        for (name, uri, want) in cases {
            let got = account_label(uri);
            assert_eq!(got, want, "{name}");
            assert_eq!(got.len(), 17, "{name}: _ + 16 characters");
        }
    }

    #[test]
    fn account_uri_is_hashed_byte_exact() {
        assert_ne!(
            account_label(EXAMPLE_ACCOUNT),
            account_label(&EXAMPLE_ACCOUNT.to_lowercase())
        );
        assert_ne!(
            account_label(EXAMPLE_ACCOUNT),
            account_label(&format!("{EXAMPLE_ACCOUNT}/"))
        );
    }

    #[test]
    fn challenge_names() {
        #[rustfmt::skip]
        let cases = [
            ("plain", "example.org", "_ujmmovf2vn55tgye._acme-challenge.example.org"),
            ("subdomain", "www.example.org", "_ujmmovf2vn55tgye._acme-challenge.www.example.org"),
            ("wildcard uses the base name", "*.example.org", "_ujmmovf2vn55tgye._acme-challenge.example.org"),
            ("only one *. is stripped", "*.*.example.org", "_ujmmovf2vn55tgye._acme-challenge.*.example.org"),
        ];
        for (name, fqdn, want) in cases {
            assert_eq!(challenge_name(fqdn, EXAMPLE_ACCOUNT), want, "{name}");
        }
    }

    #[test]
    fn value_is_as_dns01() {
        let digest = expected_value("token.thumbprint");
        assert_eq!(digest, expected_digest("token.thumbprint"));
        assert_eq!(
            matches(&[b"x".to_vec(), digest.clone().into_bytes()], &digest),
            Some(1)
        );
    }
}
