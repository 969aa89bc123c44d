//! The pure half of the CAA check: which names to climb (RFC 8659 §3), which level's RRset is
//! relevant, how an `issue`/`issuewild`/`issuemail` value parses (RFC 8659 §4.2, RFC 9495 §3,
//! RFC 8657), and whether the relevant RRset permits issuance for a request (RFC 8659 §4.3,
//! RFC 9495 §4, BR 3.2.2.8, S/MIME BR 4.2.2.2).
//!
//! No I/O here: [`super::lookup`] does the queries and hands the per-level results in. The
//! choices the RFCs leave open follow `../shared/standards.md` §3 (and Boulder, whose
//! `caa.go` taught us the parallel climb and the duplicate-parameter rules).

use std::fmt;

pub use super::parameters::{LabelCase, ParameterFailure, method_labels};

/// Tags this node understands; a critical record with any other tag forbids issuance
/// (RFC 8659 §4.1, BR 3.2.2.8). `contactemail`/`contactphone` (BR App. A), `issuemail`
/// (RFC 9495) and `issuevmc` (VMC requirements) do not restrict TLS issuance; `issue` and
/// `issuewild` do not restrict S/MIME issuance (RFC 9495 §4).
pub const KNOWN_TAGS: [&str; 7] = [
    "issue",
    "issuewild",
    "iodef",
    "contactemail",
    "contactphone",
    "issuemail",
    "issuevmc",
];

/// The critical flag (RFC 8659 §4.1: bit 0, the top bit, value 128).
pub const CRITICAL: u8 = 0b1000_0000;

/// One CAA record as found in DNS: flags byte, tag and raw value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaaRecord {
    /// The flags octet (128 = critical).
    pub flags: u8,
    /// The property tag, as published (matched case-insensitively).
    pub tag: String,
    /// The property value, raw.
    pub value: Vec<u8>,
}

/// The kind of certificate a CAA check is for: it selects the governing property.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CertificateType {
    /// A TLS server certificate: `issue`/`issuewild` govern (RFC 8659 §4.3, BR 3.2.2.8).
    #[default]
    Tls,
    /// An S/MIME certificate for a mailbox at the checked domain: only `issuemail` governs
    /// (RFC 9495 §4, S/MIME BR 4.2.2.2); `issue` and `issuewild` do not restrict it.
    Smime,
}

/// What the CA is asking to issue.
#[derive(Debug, Clone, Copy)]
pub struct CaaRequest<'a> {
    /// The CA's Issuer Domain Names; any one matching authorizes.
    pub issuer_domains: &'a [String],
    /// A wildcard certificate (`issuewild` selection; ignored for S/MIME).
    pub wildcard: bool,
    /// TLS (`issue`/`issuewild`) or S/MIME (`issuemail`).
    pub certificate_type: CertificateType,
    /// The account URIs that satisfy `accounturi` (RFC 8657 §3): the requesting account and
    /// the Parent Accounts the CA maps it to (BR 4.2.2.1.2). Empty: no account.
    pub account_uris: &'a [&'a str],
    /// The validation method (a DCV wire name, an ACME label or `ca-tbr-<N>`), matched against
    /// `validationmethods` (RFC 8657 §4, BR 4.2.2.1.2; see [`method_labels`]).
    pub method: Option<&'a str>,
}

/// Choices the standards leave to the CA.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PolicyOptions {
    /// Also treat flag value 1 as critical (a common publishing mistake; Boulder does this,
    /// RFC 8659 does not).
    pub flag_1_is_critical: bool,
    /// How `validationmethods` labels are compared (BR 4.2.2.1.2: exact by default; a CA MAY
    /// match case-insensitively if its CP/CPS says so).
    pub method_label_case: LabelCase,
}

impl PolicyOptions {
    /// The options the `[caa]` table selects.
    pub fn from_config(config: &crate::config::CaaConfig) -> Self {
        Self {
            method_label_case: if config.case_insensitive_method_labels {
                LabelCase::Insensitive
            } else {
                LabelCase::Exact
            },
            ..Self::default()
        }
    }
}

/// The parsed value of an `issue` or `issuewild` property.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IssueValue {
    /// The issuer domain name, lowercased; `None` grants nobody (`";"`, `""`, or malformed).
    pub issuer: Option<String>,
    /// Parameters in order, tags as published.
    pub parameters: Vec<(String, String)>,
    /// The value did not match the RFC 8659 §4.2 grammar (so it is treated as an empty issuer).
    pub malformed: bool,
}

/// The result of one level of the climb, as the lookup saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LevelResult {
    /// CAA records found (possibly through an alias).
    Records(Vec<CaaRecord>),
    /// NOERROR/NODATA, NXDOMAIN below the TLD, or a dangling alias: climb on.
    Empty,
    /// NXDOMAIN for the top-level domain itself: the name cannot exist, treat as an error.
    NxDomainTld,
    /// SERVFAIL, REFUSED, timeout, bogus DNSSEC...: the level is unknown.
    Failed {
        /// What went wrong, for the problem detail.
        detail: String,
    },
}

/// Which level's RRset is relevant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relevant {
    /// The first non-empty RRset was at this level (0 = the name itself).
    Found {
        /// Index into the climb.
        level: usize,
    },
    /// No level had CAA records: unrestricted.
    NoneFound,
}

/// The climb could not decide: a level at or below the relevant one failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClimbFailure {
    /// Index into the climb of the failed level.
    pub level: usize,
    /// What went wrong.
    pub detail: String,
}

/// The verdict for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaaDecision {
    /// Issuance is permitted, and why.
    Permitted(Permission),
    /// Issuance is forbidden, and why.
    Forbidden(Refusal),
}

impl CaaDecision {
    /// Whether issuance is permitted.
    pub fn is_permitted(&self) -> bool {
        matches!(self, CaaDecision::Permitted(_))
    }
}

/// Why issuance is permitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Permission {
    /// No CAA records anywhere in the climb.
    NoRecords,
    /// Records exist but none of the property that governs this request (e.g. only `iodef`,
    /// only `issuewild` for a non-wildcard name, or no `issuemail` for S/MIME: RFC 9495 §4).
    NoRelevantProperty,
    /// A record names one of the CA's issuer domains and its parameters are satisfied.
    Authorized {
        /// The property used (`issue`, `issuewild` or `issuemail`).
        property: &'static str,
        /// The issuer domain that matched.
        issuer: String,
    },
}

/// Why issuance is forbidden.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A critical record carries a tag this node does not process.
    UnknownCriticalTag {
        /// The tag.
        tag: String,
        /// The flags octet.
        flags: u8,
    },
    /// No relevant record names one of the CA's issuer domains with satisfied parameters.
    NotAuthorized {
        /// The property that governs this request.
        property: &'static str,
        /// The issuers the relevant records name (`""` for an empty or malformed value).
        issuers: Vec<String>,
        /// For records naming our issuer: which parameter was not satisfied.
        parameter_failures: Vec<ParameterFailure>,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::UnknownCriticalTag { tag, flags } => write!(
                f,
                "CAA record with flags {flags} (critical) has tag {tag:?}, which this CA does not process, so issuance is forbidden"
            ),
            Refusal::NotAuthorized {
                property,
                issuers,
                parameter_failures,
            } => {
                let listed: Vec<String> = issuers
                    .iter()
                    .map(|issuer| {
                        if issuer.is_empty() {
                            "\";\" (nobody)".to_owned()
                        } else {
                            format!("{issuer:?}")
                        }
                    })
                    .collect();
                write!(
                    f,
                    "CAA {property} records name {} but not this CA",
                    listed.join(", ")
                )?;
                if !parameter_failures.is_empty() {
                    let failures: Vec<String> =
                        parameter_failures.iter().map(ToString::to_string).collect();
                    write!(
                        f,
                        "; records naming this CA do not apply: {}",
                        failures.join("; ")
                    )?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Permission::NoRecords => f.write_str("no CAA records: issuance unrestricted"),
            Permission::NoRelevantProperty => {
                f.write_str("CAA records present but none restrict this request")
            }
            Permission::Authorized { property, issuer } => {
                write!(f, "CAA {property} authorizes {issuer}")
            }
        }
    }
}

/// The names to query, most specific first: the name itself (without `*.`), then each parent
/// down to the top-level domain; the root is never queried. Lowercased, without trailing dot.
/// Empty if the name has no labels.
pub fn climb_names(identifier: &str) -> Vec<String> {
    let name = identifier.strip_prefix("*.").unwrap_or(identifier);
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if name.is_empty() {
        return Vec::new();
    }
    let mut names = vec![name.clone()];
    let mut rest = name.as_str();
    while let Some((_, parent)) = rest.split_once('.') {
        if parent.is_empty() {
            break;
        }
        names.push(parent.to_owned());
        rest = parent;
    }
    names
}

/// Picks the relevant level (RFC 8659 §3): the first level with records, provided every more
/// specific level answered. A failure above the relevant level does not matter.
pub fn relevant_level(levels: &[LevelResult]) -> Result<Relevant, ClimbFailure> {
    for (level, result) in levels.iter().enumerate() {
        match result {
            LevelResult::Records(records) if !records.is_empty() => {
                return Ok(Relevant::Found { level });
            }
            LevelResult::Records(_) | LevelResult::Empty => {}
            LevelResult::NxDomainTld => {
                return Err(ClimbFailure {
                    level,
                    detail: "the top-level domain does not exist (NXDOMAIN)".into(),
                });
            }
            LevelResult::Failed { detail } => {
                return Err(ClimbFailure {
                    level,
                    detail: detail.clone(),
                });
            }
        }
    }
    Ok(Relevant::NoneFound)
}

/// Decides a request against the relevant RRset (RFC 8659 §4, BR 3.2.2.8 / 4.2.2.1, and RFC
/// 8657 as BR 4.2.2.1.2 amends it: see [`super::parameters`]). For S/MIME, RFC 9495 §4: the
/// same critical-flag rule, then only `issuemail` records, matched like `issue`.
pub fn decide(
    records: &[CaaRecord],
    request: &CaaRequest<'_>,
    options: &PolicyOptions,
) -> CaaDecision {
    if records.is_empty() {
        return CaaDecision::Permitted(Permission::NoRecords);
    }
    for record in records {
        let critical =
            record.flags & CRITICAL != 0 || (options.flag_1_is_critical && record.flags & 1 != 0);
        if critical && !is_known_tag(&record.tag) {
            return CaaDecision::Forbidden(Refusal::UnknownCriticalTag {
                tag: record.tag.clone(),
                flags: record.flags,
            });
        }
    }
    let (property, relevant) = relevant_property(records, request);
    if relevant.is_empty() {
        return CaaDecision::Permitted(Permission::NoRelevantProperty);
    }

    let mut issuers = Vec::new();
    let mut parameter_failures = Vec::new();
    for record in relevant {
        let value = parse_issue_value(&record.value);
        let Some(issuer) = value.issuer.as_deref() else {
            issuers.push(String::new());
            continue;
        };
        issuers.push(issuer.to_owned());
        let Some(ours) = request
            .issuer_domains
            .iter()
            .find(|ours| normalise_issuer(ours) == issuer)
        else {
            continue;
        };
        match super::parameters::satisfied(
            &value.parameters,
            request.account_uris,
            request.method,
            options.method_label_case,
        ) {
            Ok(()) => {
                return CaaDecision::Permitted(Permission::Authorized {
                    property,
                    issuer: normalise_issuer(ours),
                });
            }
            Err(failure) => parameter_failures.push(failure),
        }
    }
    CaaDecision::Forbidden(Refusal::NotAuthorized {
        property,
        issuers,
        parameter_failures,
    })
}

/// The property that governs `request` and its records in the relevant RRset.
///
/// TLS (RFC 8659 §4.3): a wildcard uses `issuewild` if any exists, else `issue`; a plain name
/// ignores `issuewild` entirely. S/MIME (RFC 9495 §4, S/MIME BR 4.2.2.2): only `issuemail`;
/// "the presence of other Property Tags, such as issue or issuewild, does not restrict" it, and
/// its value has the `issue` syntax and parameters (RFC 9495 §3).
fn relevant_property<'r>(
    records: &'r [CaaRecord],
    request: &CaaRequest<'_>,
) -> (&'static str, Vec<&'r CaaRecord>) {
    let with_tag = |tag: &str| -> Vec<&'r CaaRecord> {
        records
            .iter()
            .filter(|r| r.tag.eq_ignore_ascii_case(tag))
            .collect()
    };
    match request.certificate_type {
        CertificateType::Smime => ("issuemail", with_tag("issuemail")),
        CertificateType::Tls => {
            let issuewild = with_tag("issuewild");
            if request.wildcard && !issuewild.is_empty() {
                ("issuewild", issuewild)
            } else {
                ("issue", with_tag("issue"))
            }
        }
    }
}

/// Whether this node processes `tag` (case-insensitive, RFC 8659 §4.1).
pub fn is_known_tag(tag: &str) -> bool {
    KNOWN_TAGS
        .iter()
        .any(|known| known.eq_ignore_ascii_case(tag))
}

fn normalise_issuer(issuer: &str) -> String {
    issuer.trim_end_matches('.').to_ascii_lowercase()
}

/// Parses an `issue`/`issuewild` value by the RFC 8659 §4.2 grammar. A value that does not
/// match is `malformed` with no issuer (it grants nobody), never an error.
pub fn parse_issue_value(value: &[u8]) -> IssueValue {
    let mut parser = Parser {
        bytes: value,
        at: 0,
    };
    match parser.issue_value() {
        Some(parsed) => parsed,
        None => IssueValue {
            issuer: None,
            parameters: Vec::new(),
            malformed: true,
        },
    }
}

struct Parser<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_wsp(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    fn issue_value(&mut self) -> Option<IssueValue> {
        self.skip_wsp();
        let issuer = if matches!(self.peek(), Some(b) if b.is_ascii_alphanumeric()) {
            Some(self.domain_name()?.to_ascii_lowercase())
        } else {
            None
        };
        self.skip_wsp();
        let mut parameters = Vec::new();
        if self.peek() == Some(b';') {
            self.at += 1;
            self.skip_wsp();
            if self.peek().is_some() {
                loop {
                    parameters.push(self.parameter()?);
                    self.skip_wsp();
                    if self.peek() != Some(b';') {
                        break;
                    }
                    self.at += 1;
                    self.skip_wsp();
                }
            }
        }
        if self.peek().is_some() {
            return None;
        }
        Some(IssueValue {
            issuer,
            parameters,
            malformed: false,
        })
    }

    /// `label *("." label)`.
    fn domain_name(&mut self) -> Option<String> {
        let start = self.at;
        self.label()?;
        while self.peek() == Some(b'.') {
            self.at += 1;
            self.label()?;
        }
        self.text(start)
    }

    /// `(ALPHA / DIGIT) *( *("-") (ALPHA / DIGIT))`: alphanumerics and inner hyphens.
    fn label(&mut self) -> Option<String> {
        let start = self.at;
        if !matches!(self.peek(), Some(b) if b.is_ascii_alphanumeric()) {
            return None;
        }
        while matches!(self.peek(), Some(b) if b.is_ascii_alphanumeric() || b == b'-') {
            self.at += 1;
        }
        if self.bytes.get(self.at - 1) == Some(&b'-') {
            return None;
        }
        self.text(start)
    }

    /// `tag *WSP "=" *WSP value`.
    fn parameter(&mut self) -> Option<(String, String)> {
        let tag = self.label()?;
        self.skip_wsp();
        if self.peek() != Some(b'=') {
            return None;
        }
        self.at += 1;
        self.skip_wsp();
        let start = self.at;
        while matches!(self.peek(), Some(0x21..=0x3a | 0x3c..=0x7e)) {
            self.at += 1;
        }
        Some((tag, self.text(start)?))
    }

    fn text(&self, start: usize) -> Option<String> {
        let slice = self.bytes.get(start..self.at)?;
        std::str::from_utf8(slice).ok().map(str::to_owned)
    }
}

/// Drives the parser and the decision with arbitrary input (the `caa_policy` fuzz target).
/// Panics only if an invariant breaks.
pub fn exercise(data: &[u8]) {
    let parsed = parse_issue_value(data);
    assert!(
        !(parsed.malformed && parsed.issuer.is_some()),
        "malformed values grant nobody"
    );
    // Split the input into records: byte 0 flags, byte 1 tag selector, rest value chunks.
    let records: Vec<CaaRecord> = data
        .chunks(24)
        .map(|chunk| {
            let flags = chunk.first().copied().unwrap_or(0);
            let tag = match chunk.get(1).copied().unwrap_or(0) % 5 {
                0 => "issue",
                1 => "issuewild",
                2 => "iodef",
                3 => "issuemail",
                _ => "x-unknown",
            };
            CaaRecord {
                flags,
                tag: tag.into(),
                value: chunk.get(2..).unwrap_or_default().to_vec(),
            }
        })
        .collect();
    let issuers = ["ca.example".to_owned()];
    let accounts: [&[&str]; 2] = [
        &["https://ca.example/acct/1"],
        &[
            "https://ca.example/acct/1",
            "https://ca.example/acct/parent",
        ],
    ];
    for (wildcard, account_uris, case, certificate_type) in [
        (false, accounts[0], LabelCase::Exact, CertificateType::Tls),
        (
            true,
            accounts[1],
            LabelCase::Insensitive,
            CertificateType::Tls,
        ),
        (false, accounts[0], LabelCase::Exact, CertificateType::Smime),
    ] {
        let request = CaaRequest {
            issuer_domains: &issuers,
            wildcard,
            certificate_type,
            account_uris,
            method: Some("dns-01"),
        };
        let options = PolicyOptions {
            method_label_case: case,
            ..PolicyOptions::default()
        };
        let decision = decide(&records, &request, &options);
        if let CaaDecision::Permitted(Permission::Authorized { issuer, .. }) = &decision {
            assert_eq!(issuer, "ca.example");
        }
        let _ = decision.to_string_lossy();
    }
}

impl CaaDecision {
    /// A one-line human description.
    pub fn to_string_lossy(&self) -> String {
        match self {
            CaaDecision::Permitted(permission) => permission.to_string(),
            CaaDecision::Forbidden(refusal) => refusal.to_string(),
        }
    }
}
