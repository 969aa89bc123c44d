//! Domain contacts for the email and phone methods (BR 3.2.2.4.13, .14, .16, .17; BR Appendix A):
//! the TXT record names, the value syntax, and the valid contacts in TXT and CAA answers.
//!
//! The node returns every valid contact it sees; the primary checks that the one it selected is
//! among them (standards.md §4). Phones are compared without visual separators (our rule), so they
//! are returned normalised; emails are returned exactly as published.

use super::dns_change::authorization_domain_name;

/// Longest local part, in octets (RFC 5321 §4.5.3.1.1).
pub const MAX_LOCAL_PART_LEN: usize = 64;

/// Longest domain, in octets (RFC 5321 §4.5.3.1.2; RFC 1035 §2.3.4 without the root dot).
pub const MAX_DOMAIN_LEN: usize = 253;

/// Longest domain label, in octets (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;

/// Most digits in an international number, country code included (ITU-T E.164 §6.1).
pub const MAX_PHONE_DIGITS: usize = 15;

/// Which kind of contact a method uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContactKind {
    /// An email address: BR 3.2.2.4.13 (CAA `contactemail`), 3.2.2.4.14 (TXT).
    Email,
    /// A phone number: BR 3.2.2.4.17 (CAA `contactphone`), 3.2.2.4.16 (TXT).
    Phone,
}

impl ContactKind {
    /// The underscore label of the TXT record (BR Appendix A.2.1, A.2.2).
    pub fn txt_label(self) -> &'static str {
        match self {
            ContactKind::Email => "_validation-contactemail",
            ContactKind::Phone => "_validation-contactphone",
        }
    }

    /// The CAA property tag (BR Appendix A.1.1, A.1.2).
    pub fn caa_tag(self) -> &'static str {
        match self {
            ContactKind::Email => "contactemail",
            ContactKind::Phone => "contactphone",
        }
    }

    /// Whether `value` is a valid contact of this kind ([`valid_email`], [`valid_phone`]).
    pub fn is_valid(self, value: &str) -> bool {
        match self {
            ContactKind::Email => valid_email(value),
            ContactKind::Phone => valid_phone(value),
        }
    }
}

/// The TXT record name: `_validation-contactemail.<ADN>` or `_validation-contactphone.<ADN>`
/// (BR Appendix A.2.1, A.2.2). A wildcard FQDN is looked up at its base name.
pub fn txt_record_name(kind: ContactKind, adn: &str) -> String {
    format!("{}.{}", kind.txt_label(), authorization_domain_name(adn))
}

/// Whether the *whole* value is an email address (BR Appendix A: "The entire parameter value MUST
/// be a valid email address as defined in RFC 6532, Section 3.2, with no additional padding or
/// structure"): an RFC 5322 §3.4.1 `addr-spec` with a `dot-atom` local part, `@`, and a domain of
/// dot-separated labels, UTF-8 allowed in both (RFC 6532 §3.2). No display name, angle brackets,
/// comments or surrounding white space.
///
/// Narrower than RFC 5322 (our rule): quoted-string local parts (`"a b"@example.com`) and
/// domain literals (`user@[192.0.2.1]`) are refused, as are control characters; SMTP's length
/// limits apply (RFC 5321 §4.5.3.1). The domain's ASCII labels must be letters, digits and inner
/// hyphens (RFC 5321 §4.1.2 `sub-domain`); its non-ASCII labels are taken as U-labels unchecked.
pub fn valid_email(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    valid_local_part(local) && valid_domain(domain)
}

/// `dot-atom-text = 1*atext *("." 1*atext)` (RFC 5322 §3.2.3), `atext` widened by
/// `UTF8-non-ascii` (RFC 6532 §3.2).
fn valid_local_part(local: &str) -> bool {
    local.len() <= MAX_LOCAL_PART_LEN
        && local
            .split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(is_atext))
}

/// `atext` (RFC 5322 §3.2.3) plus non-ASCII characters other than controls (RFC 6532 §3.2).
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || "!#$%&'*+-/=?^_`{|}~".contains(c)
        || (!c.is_ascii() && !c.is_control())
}

/// Dot-separated labels: ASCII ones letters, digits and inner hyphens (RFC 5321 §4.1.2), others
/// any non-control UTF-8 (RFC 6532 §3.2); no empty label, so no leading or trailing dot.
fn valid_domain(domain: &str) -> bool {
    domain.len() <= MAX_DOMAIN_LEN
        && domain.split('.').all(|label| {
            let ascii_ok = |c: char| c.is_ascii_alphanumeric() || c == '-';
            !label.is_empty()
                && label.len() <= MAX_LABEL_LEN
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| ascii_ok(c) || (!c.is_ascii() && !c.is_control()))
        })
}

/// Whether the *whole* value is a global phone number (BR Appendix A: "a valid Global Number as
/// defined in RFC 3966, Section 5.1.4"): RFC 3966 §3 `global-number-digits = "+" *phonedigit
/// DIGIT *phonedigit`, where `phonedigit` is a digit or a visual separator (`-`, `.`, `(`, `)`),
/// plus spaces (standards.md §4, as CAs' contact data is written). At least one and at most
/// [`MAX_PHONE_DIGITS`] digits (E.164). No `;ext=` or other parameters.
pub fn valid_phone(value: &str) -> bool {
    let Some(rest) = value.strip_prefix('+') else {
        return false;
    };
    let mut digits = 0usize;
    for c in rest.chars() {
        match c {
            '0'..='9' => digits += 1,
            '-' | '.' | '(' | ')' | ' ' => {}
            _ => return false,
        }
    }
    (1..=MAX_PHONE_DIGITS).contains(&digits)
}

/// The comparison form of a phone number: `+` and its digits, separators dropped (our rule,
/// standards.md §4). Meant for values that passed [`valid_phone`]; others give meaningless output.
pub fn normalize_phone(value: &str) -> String {
    std::iter::once('+')
        .chain(value.chars().filter(char::is_ascii_digit))
        .collect()
}

/// The valid contacts in the TXT records at [`txt_record_name`] (BR Appendix A.2): each record
/// (strings concatenated) must be UTF-8 and valid as a whole. Phones come back normalised
/// ([`normalize_phone`]), emails exactly as published; duplicates are dropped, first kept.
pub fn contacts_from_txt(values: &[Vec<u8>], kind: ContactKind) -> Vec<String> {
    collect_contacts(values.iter().map(Vec::as_slice), kind)
}

/// The valid contacts in the relevant CAA RRset (BR Appendix A.1; the RRset comes from the
/// RFC 8659 §3 climb): records whose tag is `contactemail` or `contactphone` as `kind` says,
/// matched case-insensitively (RFC 8659 §4.1), values valid as a whole. Same output form as
/// [`contacts_from_txt`].
pub fn contacts_from_caa(records: &[(String, Vec<u8>)], kind: ContactKind) -> Vec<String> {
    let values = records
        .iter()
        .filter(|(tag, _)| tag.eq_ignore_ascii_case(kind.caa_tag()))
        .map(|(_, value)| value.as_slice());
    collect_contacts(values, kind)
}

fn collect_contacts<'a>(values: impl Iterator<Item = &'a [u8]>, kind: ContactKind) -> Vec<String> {
    let mut contacts: Vec<String> = Vec::new();
    for value in values {
        let Ok(text) = std::str::from_utf8(value) else {
            continue;
        };
        if !kind.is_valid(text) {
            continue;
        }
        let contact = match kind {
            ContactKind::Email => text.to_owned(),
            ContactKind::Phone => normalize_phone(text),
        };
        if !contacts.contains(&contact) {
            contacts.push(contact);
        }
    }
    contacts
}

#[cfg(test)]
mod tests;
