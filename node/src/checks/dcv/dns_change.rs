//! BR 3.2.2.4.7 DNS Change: decides whether a TXT, CNAME or CAA record carries the Random Value.
//!
//! Pure: the I/O part looks up [`lookup_names`] (TXT, CNAME and CAA), concatenates the strings of
//! each TXT RR, and hands every candidate to the `matches_*` functions here. Any one match passes
//! (BR 3.2.2.4.7: "confirming the presence of a Random Value or Request Token").

/// Fewest characters accepted in an expected Random Value or Request Token. The BR wants a
/// Random Value to hold 112 bits of entropy (BR 1.6.1 "Random Value"), which a perspective cannot
/// measure; 112 bits need at least 18 printable-ASCII characters (19 in base64url, 28 in hex), so
/// this floor never refuses a real Random Value, and CAs' Request Tokens (no entropy rule) are
/// longer still. It mainly keeps presence (substring) matching meaningful: a short needle would
/// be "present" in almost any record.
pub const MIN_RANDOM_VALUE_LEN: usize = 16;

/// Longest prefix label, in octets (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;

/// Longest domain name in presentation form without the trailing dot, in octets
/// (RFC 1035 §2.3.4: 255 octets on the wire).
pub const MAX_NAME_LEN: usize = 253;

/// What the primary asks: which value must be present, and how to compare it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DnsChangeRequest<'a> {
    /// The Random Value or Request Token (BR 1.6.1).
    pub expected: &'a str,
    /// `true`: the record value must equal `expected`. `false` (the default): `expected` must
    /// occur somewhere in it, the BR's "presence" (Open MPIC `require_exact_match=false`).
    pub exact: bool,
    /// `true` (the default): TXT and CAA values compare byte for byte (standards.md §4
    /// "Common"). `false`: ASCII letters compare case-insensitively. CNAME targets are names
    /// and always compare case-insensitively (RFC 4343).
    pub case_sensitive: bool,
}

impl<'a> DnsChangeRequest<'a> {
    /// A request with the defaults: presence (substring) matching, case-sensitive values.
    pub fn new(expected: &'a str) -> Self {
        DnsChangeRequest {
            expected,
            exact: false,
            case_sensitive: true,
        }
    }
}

/// Why a Random Value fails the sanity check of [`validate_random_value`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RandomValueError {
    /// Shorter than [`MIN_RANDOM_VALUE_LEN`].
    #[error("random value is {len} characters, fewer than {min}")]
    TooShort {
        /// Characters given.
        len: usize,
        /// [`MIN_RANDOM_VALUE_LEN`].
        min: usize,
    },
    /// Holds a character outside printable ASCII (`!`..=`~`; no space, no control, no UTF-8).
    #[error("random value has a non-printable or non-ASCII character at byte {offset}")]
    NotPrintable {
        /// Byte offset of the first offending character.
        offset: usize,
    },
}

/// Why a prefix cannot be used (BR 3.2.2.4.7: "an Authorization Domain Name that is prefixed
/// with a Domain Label that begins with an underscore character").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// The prefix is empty.
    #[error("prefix is empty")]
    Empty,
    /// The prefix does not start with `_`.
    #[error("prefix {prefix:?} does not start with an underscore")]
    NoUnderscore {
        /// The prefix given.
        prefix: String,
    },
    /// The prefix holds a `.`, so it is more than one label.
    #[error("prefix {prefix:?} is more than one label")]
    MultipleLabels {
        /// The prefix given.
        prefix: String,
    },
    /// The prefix holds a character other than ASCII letters, digits, `-` and `_`.
    #[error("prefix {prefix:?} has the character {character:?}, not a letter, digit, - or _")]
    BadCharacter {
        /// The prefix given.
        prefix: String,
        /// The first offending character.
        character: char,
    },
    /// The prefix is longer than a DNS label may be.
    #[error("prefix is {len} octets, over the {MAX_LABEL_LEN}-octet label limit")]
    TooLong {
        /// Octets given.
        len: usize,
    },
    /// The prefixed name is longer than a domain name may be.
    #[error("prefixed name {name:?} is {len} octets, over the {MAX_NAME_LEN}-octet name limit")]
    NameTooLong {
        /// The prefixed name.
        name: String,
        /// Its length in octets.
        len: usize,
    },
}

/// The Authorization Domain Name of a certificate FQDN: the FQDN minus a leading `*.` (BR 1.6.1
/// "Authorization Domain Name"; a wildcard is validated at its base name). Pruning further
/// toward the Base Domain is the primary's choice, made before it sends the name: the node has no
/// Public Suffix List and must not guess where the Base Domain ends.
pub fn authorization_domain_name(fqdn: &str) -> &str {
    fqdn.strip_prefix("*.").unwrap_or(fqdn)
}

/// The names to query for TXT, CNAME and CAA records (BR 3.2.2.4.7): the ADN, or
/// `<prefix>.<ADN>` when the primary names a prefix. The prefix must be exactly one label that
/// starts with `_` (BR 3.2.2.4.7 (2)); we also limit it to letters, digits, `-` and `_` so the
/// name needs no presentation-format escapes.
///
/// Today the list holds exactly one name: the primary sends the ADN it pruned to (see
/// [`authorization_domain_name`]), and the node does not prune on its own. It is a list so the
/// I/O part treats every method's lookups alike.
pub fn lookup_names(fqdn: &str, prefix: Option<&str>) -> Result<Vec<String>, PrefixError> {
    let adn = authorization_domain_name(fqdn);
    let Some(prefix) = prefix else {
        return Ok(vec![adn.to_owned()]);
    };
    validate_prefix(prefix)?;
    let name = format!("{prefix}.{adn}");
    if name.len() > MAX_NAME_LEN {
        let len = name.len();
        return Err(PrefixError::NameTooLong { name, len });
    }
    Ok(vec![name])
}

/// Checks one prefix label (BR 3.2.2.4.7 (2), RFC 1035 §2.3.4 for the length).
fn validate_prefix(prefix: &str) -> Result<(), PrefixError> {
    if prefix.is_empty() {
        return Err(PrefixError::Empty);
    }
    if !prefix.starts_with('_') {
        return Err(PrefixError::NoUnderscore {
            prefix: prefix.to_owned(),
        });
    }
    if prefix.contains('.') {
        return Err(PrefixError::MultipleLabels {
            prefix: prefix.to_owned(),
        });
    }
    if let Some(character) = prefix
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(PrefixError::BadCharacter {
            prefix: prefix.to_owned(),
            character,
        });
    }
    if prefix.len() > MAX_LABEL_LEN {
        return Err(PrefixError::TooLong { len: prefix.len() });
    }
    Ok(())
}

/// A sanity check of an expected Random Value or Request Token: at least
/// [`MIN_RANDOM_VALUE_LEN`] characters, all printable ASCII. It cannot prove the BR's 112 bits of
/// entropy (BR 1.6.1 "Random Value"); that is the CA's duty. It only refuses values that are
/// certainly wrong, and the `matches_*` functions never pass a value that fails it.
pub fn validate_random_value(value: &str) -> Result<(), RandomValueError> {
    if let Some(offset) = value.bytes().position(|b| !b.is_ascii_graphic()) {
        return Err(RandomValueError::NotPrintable { offset });
    }
    if value.len() < MIN_RANDOM_VALUE_LEN {
        return Err(RandomValueError::TooShort {
            len: value.len(),
            min: MIN_RANDOM_VALUE_LEN,
        });
    }
    Ok(())
}

/// Whether one TXT record (its strings already concatenated, standards.md §4 "Common") carries
/// the expected value (BR 3.2.2.4.7).
pub fn matches_txt(value: &[u8], request: &DnsChangeRequest<'_>) -> bool {
    matches_value(value, request)
}

/// Whether one CAA record's value field carries the expected value (BR 3.2.2.4.7 lists CAA
/// among the record types). The value compares as a TXT value does; the tag and flags are the
/// I/O part's business.
pub fn matches_caa(value: &[u8], request: &DnsChangeRequest<'_>) -> bool {
    matches_value(value, request)
}

/// Whether a CNAME target carries the expected value (BR 3.2.2.4.7). Names compare
/// case-insensitively (RFC 4343 §3) whatever `case_sensitive` says, and one trailing dot on
/// either side is ignored. Exact: the target is the expected name. Presence: the expected text
/// occurs in the target.
pub fn matches_cname(target: &str, request: &DnsChangeRequest<'_>) -> bool {
    if validate_random_value(request.expected).is_err() {
        return false;
    }
    let target = target.strip_suffix('.').unwrap_or(target).as_bytes();
    let expected = request.expected;
    let expected = expected.strip_suffix('.').unwrap_or(expected).as_bytes();
    if request.exact {
        target.eq_ignore_ascii_case(expected)
    } else {
        contains(target, expected, false)
    }
}

/// The TXT/CAA value rule: exact or presence, case as the request says; never a pass for an
/// expected value that fails [`validate_random_value`].
fn matches_value(value: &[u8], request: &DnsChangeRequest<'_>) -> bool {
    if validate_random_value(request.expected).is_err() {
        return false;
    }
    let expected = request.expected.as_bytes();
    match (request.exact, request.case_sensitive) {
        (true, true) => value == expected,
        (true, false) => value.eq_ignore_ascii_case(expected),
        (false, case_sensitive) => contains(value, expected, case_sensitive),
    }
}

/// Whether `needle` (non-empty) occurs in `haystack`; ASCII case folded unless `case_sensitive`.
fn contains(haystack: &[u8], needle: &[u8], case_sensitive: bool) -> bool {
    if needle.is_empty() {
        return false;
    }
    haystack.windows(needle.len()).any(|window| {
        if case_sensitive {
            window == needle
        } else {
            window.eq_ignore_ascii_case(needle)
        }
    })
}

#[cfg(test)]
mod tests;
