//! Persistent DNS TXT validation (BR 3.2.2.4.22, draft-ietf-acme-dns-persist): parses
//! `_validation-persist` records (RFC 8659 §4.2 `issue-value` syntax) and decides whether one
//! authorizes the requesting account.
//!
//! What the node corroborates is "a valid record with the same `accounturi`" (standards.md §4).
//! The account URI compares by RFC 3986 §6.2.1 Simple String Comparison (byte for byte, as
//! Boulder; Open MPIC lower-cases, which we do not). Later drafts publish a *hashed* account URI
//! there; a primary following them sends the hashed form and the same comparison holds.

use super::dns_change::authorization_domain_name;

/// The label of the validation record (BR 3.2.2.4.22; draft-ietf-acme-dns-persist §4).
pub const RECORD_LABEL: &str = "_validation-persist";

/// The label of the IP-address form (BR 3.2.2.5.8).
pub const IP_RECORD_LABEL: &str = "_ip-validation-persist";

/// `accounturi` parameter: the account bound to the record (BR 3.2.2.4.22; RFC 8657 §3 name).
const ACCOUNT_URI: &str = "accounturi";
/// `persistUntil` parameter: UNIX seconds after which the record is unusable.
const PERSIST_UNTIL: &str = "persistUntil";
/// `policy` parameter: `wildcard` widens the draft's scope to subdomains and wildcards.
const POLICY: &str = "policy";
/// The one `policy` value defined (draft-ietf-acme-dns-persist §4.1 item 4).
const POLICY_WILDCARD: &str = "wildcard";

/// The name to query: `_validation-persist.<ADN>` (BR 3.2.2.4.22). A wildcard FQDN is looked up
/// at its base name.
pub fn record_name(adn: &str) -> String {
    format!("{RECORD_LABEL}.{}", authorization_domain_name(adn))
}

/// The name to query for an IP address: `_ip-validation-persist.<Reverse Zone Domain Name>`
/// (BR 3.2.2.5.8), e.g. `_ip-validation-persist.7.113.0.203.in-addr.arpa`.
pub fn ip_record_name(reverse_zone: &str) -> String {
    format!("{IP_RECORD_LABEL}.{reverse_zone}")
}

/// One TXT record, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersistRecord {
    /// The issuer-domain-name, ASCII lower-cased (RFC 4343: names compare case-insensitively).
    pub issuer: String,
    /// The `accounturi` value as published, if present. A record without one never authorizes
    /// (BR 3.2.2.4.22: it MUST be present), but it still parses, so the evidence can show it.
    pub account_uri: Option<String>,
    /// The `persistUntil` value, UNIX seconds, if present.
    pub persist_until: Option<u64>,
    /// `policy=wildcard` is present (value compared case-insensitively, draft §4.1 item 4). Any
    /// other policy value counts as no policy.
    pub wildcard_policy: bool,
    /// Every parameter in order, tag and value as written, known ones included.
    pub parameters: Vec<(String, String)>,
}

/// Where the RFC 8659 §4.2 grammar breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxProblem {
    /// The issuer-domain-name is not labels of letters, digits and inner hyphens joined by single
    /// dots (no trailing dot, no underscore).
    #[error("issuer-domain-name is not letters, digits and inner hyphens in dot-separated labels")]
    BadIssuerDomainName,
    /// Something other than `;`, white space or the end follows the issuer-domain-name or a value.
    #[error("expected \";\" or the end")]
    ExpectedSemicolon,
    /// A parameter tag is empty or not a label (letters, digits, inner hyphens).
    #[error("parameter tag is not letters, digits and inner hyphens")]
    BadTag,
    /// A parameter tag is not followed by `=`.
    #[error("expected \"=\" after the parameter tag")]
    MissingEquals,
    /// A value holds a byte outside `%x21-3A / %x3C-7E` (a control, DEL or non-ASCII byte).
    #[error("value holds a byte outside printable ASCII")]
    BadValue,
    /// A `;` after a parameter is not followed by another parameter.
    #[error("\";\" after a parameter must be followed by another parameter")]
    TrailingSemicolon,
}

/// Why a TXT value is not a usable dns-persist record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PersistError {
    /// Not an RFC 8659 §4.2 `issue-value` (BR 3.2.2.4.22 and the draft require that syntax).
    #[error("{problem} at byte {offset}")]
    Syntax {
        /// Byte offset in the TXT value where the grammar breaks.
        offset: usize,
        /// What was wrong there.
        problem: SyntaxProblem,
    },
    /// The issuer-domain-name is empty: a valid `issue-value` that grants nobody (RFC 8659 §4.2).
    #[error("no issuer-domain-name")]
    EmptyIssuer,
    /// A known parameter appears more than once, in any letter case. Rejected as Boulder does;
    /// repeats of unknown parameters are ignored with them (draft §4.1 item 1).
    #[error("parameter {tag} appears more than once")]
    RepeatedParameter {
        /// The parameter's canonical name.
        tag: &'static str,
    },
    /// `accounturi=` with nothing after it (Boulder: malformed).
    #[error("accounturi is empty")]
    EmptyAccountUri,
    /// `persistUntil` is not a base-10 integer of UNIX seconds that fits in 64 bits (draft §4.1
    /// item 5: the record is then malformed). Signs are refused: a negative time would be in the
    /// past anyway.
    #[error("persistUntil {value:?} is not a base-10 UNIX time in seconds")]
    BadPersistUntil {
        /// The value as written.
        value: String,
    },
}

/// Parses one TXT value (the strings of one RR concatenated) as an RFC 8659 §4.2 `issue-value`:
///
/// ```text
/// issue-value = *WSP [issuer-domain-name *WSP] [";" *WSP [parameters *WSP]]
/// issuer-domain-name = label *("." label)
/// label      = (ALPHA / DIGIT) *( *("-") (ALPHA / DIGIT))
/// parameters = (parameter *WSP ";" *WSP parameters) / parameter
/// parameter  = tag *WSP "=" *WSP value         ; tag uses the label rule
/// value      = *(%x21-3A / %x3C-7E)
/// ```
///
/// then reads the known parameters `accounturi`, `persistUntil` and `policy`, whose tags match
/// case-insensitively (as Boulder). Unknown parameters are kept but ignored (draft §4.1 item 1).
pub fn parse(value: &[u8]) -> Result<PersistRecord, PersistError> {
    let mut cursor = Cursor {
        bytes: value,
        pos: 0,
    };
    cursor.skip_wsp();
    let issuer_start = cursor.pos;
    let issuer = cursor.take_while(|b| !is_wsp(b) && b != b';');
    if issuer.is_empty() {
        return Err(PersistError::EmptyIssuer);
    }
    if !issuer.split(|&b| b == b'.').all(is_label) {
        return Err(syntax(issuer_start, SyntaxProblem::BadIssuerDomainName));
    }
    cursor.skip_wsp();
    let mut parameters = Vec::new();
    match cursor.peek() {
        None => {}
        Some(b';') => {
            cursor.pos += 1;
            cursor.skip_wsp();
            // `[parameters *WSP]`: none at all is fine after the first `;`.
            while !cursor.at_end() {
                parameters.push(parse_parameter(&mut cursor)?);
                cursor.skip_wsp();
                match cursor.peek() {
                    None => {}
                    Some(b';') => {
                        cursor.pos += 1;
                        cursor.skip_wsp();
                        if cursor.at_end() {
                            return Err(syntax(cursor.pos, SyntaxProblem::TrailingSemicolon));
                        }
                    }
                    Some(_) => return Err(syntax(cursor.pos, SyntaxProblem::ExpectedSemicolon)),
                }
            }
        }
        Some(_) => return Err(syntax(cursor.pos, SyntaxProblem::ExpectedSemicolon)),
    }
    interpret(ascii_lowercase(issuer), parameters)
}

/// `parameter = tag *WSP "=" *WSP value`, then checks what follows the value is allowed.
fn parse_parameter(cursor: &mut Cursor<'_>) -> Result<(String, String), PersistError> {
    let tag_start = cursor.pos;
    let tag = cursor.take_while(|b| !is_wsp(b) && b != b'=' && b != b';');
    if !is_label(tag) {
        return Err(syntax(tag_start, SyntaxProblem::BadTag));
    }
    cursor.skip_wsp();
    if cursor.peek() != Some(b'=') {
        return Err(syntax(cursor.pos, SyntaxProblem::MissingEquals));
    }
    cursor.pos += 1;
    cursor.skip_wsp();
    let value = cursor.take_while(is_value_byte);
    match cursor.peek() {
        None | Some(b';') => {}
        Some(b) if is_wsp(b) => {}
        Some(_) => return Err(syntax(cursor.pos, SyntaxProblem::BadValue)),
    }
    Ok((ascii_string(tag), ascii_string(value)))
}

/// Reads the known parameters out of a syntactically valid record.
fn interpret(
    issuer: String,
    parameters: Vec<(String, String)>,
) -> Result<PersistRecord, PersistError> {
    let mut account_uri = None;
    let mut persist_until = None;
    let mut policy: Option<&str> = None;
    for (tag, value) in &parameters {
        if tag.eq_ignore_ascii_case(ACCOUNT_URI) {
            if account_uri.is_some() {
                return Err(PersistError::RepeatedParameter { tag: ACCOUNT_URI });
            }
            if value.is_empty() {
                return Err(PersistError::EmptyAccountUri);
            }
            account_uri = Some(value.clone());
        } else if tag.eq_ignore_ascii_case(PERSIST_UNTIL) {
            if persist_until.is_some() {
                return Err(PersistError::RepeatedParameter { tag: PERSIST_UNTIL });
            }
            persist_until = Some(parse_unix_seconds(value)?);
        } else if tag.eq_ignore_ascii_case(POLICY) {
            if policy.is_some() {
                return Err(PersistError::RepeatedParameter { tag: POLICY });
            }
            policy = Some(value);
        }
    }
    let wildcard_policy = policy.is_some_and(|value| value.eq_ignore_ascii_case(POLICY_WILDCARD));
    Ok(PersistRecord {
        issuer,
        account_uri,
        persist_until,
        wildcard_policy,
        parameters,
    })
}

/// Base-10 digits only (no sign, no space), fitting in `u64` (draft §4.1 item 5).
fn parse_unix_seconds(value: &str) -> Result<u64, PersistError> {
    let bad = || PersistError::BadPersistUntil {
        value: value.to_owned(),
    };
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    value.parse().map_err(|_| bad())
}

/// Which scope rule applies to subdomains and wildcards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersistProfile {
    /// BR 3.2.2.4.22: a validated FQDN also covers its subdomains and wildcards, with no
    /// parameter needed.
    Br,
    /// draft-ietf-acme-dns-persist §5–6: subdomains and wildcards only with `policy=wildcard`.
    Draft,
}

/// What the primary asks the node to corroborate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PersistRequest<'a> {
    /// The CA's Issuer Domain Names (BR: disclosed in CPS §4.2; draft: at most 10, from the
    /// challenge). A record names one of them, compared case-insensitively, a trailing dot on
    /// ours ignored.
    pub issuer_domains: &'a [String],
    /// The requesting account's URI, compared byte for byte with `accounturi`.
    pub account_uri: &'a str,
    /// The certificate name is a wildcard (`*.<ADN>`).
    pub wildcard: bool,
    /// The certificate name is below the ADN where the record was found.
    pub is_subdomain: bool,
    /// Which scope rule applies.
    pub profile: PersistProfile,
}

/// Why a parsed record does not authorize the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    /// The issuer-domain-name is not one of ours. The record's parameters mean what its issuer
    /// says (RFC 8659 §4.2), so nothing else is judged.
    #[error("issuer-domain-name is not one of this CA's")]
    OtherIssuer,
    /// No `accounturi` parameter (BR 3.2.2.4.22: MUST).
    #[error("no accounturi parameter")]
    MissingAccountUri,
    /// `accounturi` is not the requesting account's URI, byte for byte.
    #[error("accounturi is not the requesting account")]
    OtherAccount,
    /// `persistUntil` is before the validation time (BR 3.2.2.4.22; draft §4.1 item 5).
    #[error("persistUntil {persist_until} is before now ({now})")]
    Expired {
        /// The record's `persistUntil`, UNIX seconds.
        persist_until: u64,
        /// The validation time, UNIX seconds.
        now: u64,
    },
    /// Draft profile: a wildcard certificate needs `policy=wildcard` (draft §5).
    #[error("a wildcard name needs policy=wildcard")]
    WildcardNeedsPolicy,
    /// Draft profile: a subdomain of the ADN needs `policy=wildcard` (draft §6).
    #[error("a subdomain needs policy=wildcard")]
    SubdomainNeedsPolicy,
}

/// What one TXT record amounts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordVerdict {
    /// The record authorizes the request.
    Authorizes(PersistRecord),
    /// The record parses but does not authorize; every failed rule is listed, in check order.
    DoesNotAuthorize {
        /// The parsed record.
        record: PersistRecord,
        /// Why not (never empty).
        reasons: Vec<Mismatch>,
    },
    /// The record does not parse.
    Malformed(PersistError),
}

/// The verdict over a whole TXT RRset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersistDecision {
    /// Index of the first record that authorizes, if any.
    pub authorized_by: Option<usize>,
    /// One verdict per TXT record, in the order given.
    pub records: Vec<RecordVerdict>,
}

impl PersistDecision {
    /// Whether some record authorizes the request.
    pub fn passed(&self) -> bool {
        self.authorized_by.is_some()
    }
}

/// Judges every TXT record at `_validation-persist.<ADN>` against the request at `now_unix` (UNIX
/// seconds). Passes when some record parses, names one of our issuers, carries the requesting
/// account's `accounturi`, has no `persistUntil` or one not before now, and the profile's scope
/// rule allows the name (BR 3.2.2.4.22; draft §4.2).
pub fn decide(records: &[Vec<u8>], request: &PersistRequest<'_>, now_unix: u64) -> PersistDecision {
    let records: Vec<RecordVerdict> = records
        .iter()
        .map(|value| match parse(value) {
            Err(error) => RecordVerdict::Malformed(error),
            Ok(record) => {
                let reasons = mismatches(&record, request, now_unix);
                if reasons.is_empty() {
                    RecordVerdict::Authorizes(record)
                } else {
                    RecordVerdict::DoesNotAuthorize { record, reasons }
                }
            }
        })
        .collect();
    let authorized_by = records
        .iter()
        .position(|verdict| matches!(verdict, RecordVerdict::Authorizes(_)));
    PersistDecision {
        authorized_by,
        records,
    }
}

/// Every rule one parsed record fails; empty when it authorizes.
fn mismatches(
    record: &PersistRecord,
    request: &PersistRequest<'_>,
    now_unix: u64,
) -> Vec<Mismatch> {
    let ours = request.issuer_domains.iter().any(|name| {
        let name = name.strip_suffix('.').unwrap_or(name);
        record.issuer.eq_ignore_ascii_case(name)
    });
    if !ours {
        return vec![Mismatch::OtherIssuer];
    }
    let mut reasons = Vec::new();
    match &record.account_uri {
        None => reasons.push(Mismatch::MissingAccountUri),
        Some(uri) if uri.as_str() != request.account_uri => reasons.push(Mismatch::OtherAccount),
        Some(_) => {}
    }
    if let Some(persist_until) = record.persist_until.filter(|&until| until < now_unix) {
        reasons.push(Mismatch::Expired {
            persist_until,
            now: now_unix,
        });
    }
    if request.profile == PersistProfile::Draft && !record.wildcard_policy {
        if request.wildcard {
            reasons.push(Mismatch::WildcardNeedsPolicy);
        }
        if request.is_subdomain {
            reasons.push(Mismatch::SubdomainNeedsPolicy);
        }
    }
    reasons
}

/// A read position in a TXT value; never indexes past the end.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn skip_wsp(&mut self) {
        self.take_while(is_wsp);
    }

    /// Advances over the longest run of bytes satisfying `accept` and returns it.
    fn take_while(&mut self, accept: impl Fn(u8) -> bool) -> &'a [u8] {
        let rest = self.bytes.get(self.pos..).unwrap_or_default();
        let len = rest.iter().position(|&b| !accept(b)).unwrap_or(rest.len());
        self.pos += len;
        rest.get(..len).unwrap_or_default()
    }
}

/// `WSP = SP / HTAB` (RFC 5234 Appendix B.1).
fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// `value = *(%x21-3A / %x3C-7E)`: printable ASCII except `;` (RFC 8659 §4.2).
fn is_value_byte(b: u8) -> bool {
    matches!(b, 0x21..=0x3a | 0x3c..=0x7e)
}

/// `label = (ALPHA / DIGIT) *( *("-") (ALPHA / DIGIT))` (RFC 8659 §4.2).
fn is_label(label: &[u8]) -> bool {
    match (label.first(), label.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && label
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        }
        _ => false,
    }
}

fn syntax(offset: usize, problem: SyntaxProblem) -> PersistError {
    PersistError::Syntax { offset, problem }
}

/// Text of bytes already checked to be ASCII.
fn ascii_string(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

fn ascii_lowercase(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| char::from(b.to_ascii_lowercase()))
        .collect()
}

#[cfg(test)]
mod tests;
