//! The RFC 8657 parameters of an `issue`/`issuewild` record, as BR 4.2.2.1.2 (ballot SC-098v2,
//! MUST from 2027-03-15) requires them processed: `accounturi` against the request's set of
//! account URIs, `validationmethods` against every label that names the method the CA used.
//!
//! Pure: [`super::policy::decide`] calls [`satisfied`] for each record naming one of the CA's
//! issuer domains. Parameter tags match lower case exactly (as Boulder; RFC 8659 §4.2 is silent);
//! other parameters mean what their issuer says and are ignored here.

use std::fmt;

/// How `validationmethods` labels are compared with the method's labels.
///
/// BR 4.2.2.1.2: "The canonical representation of validationmethods labels is lowercase
/// letters. However, the CA MAY perform case insensitive matching of labels", and must then say
/// so in its CP/CPS. Exact matching is the default (`[caa] case_insensitive_method_labels`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LabelCase {
    /// Byte-for-byte: `DNS-01` does not name `dns-01`.
    #[default]
    Exact,
    /// ASCII case-insensitive: `DNS-01` names `dns-01`.
    Insensitive,
}

/// A method: the spellings a request may use for it, and the labels that name it.
struct Method {
    spellings: &'static [&'static str],
    labels: &'static [&'static str],
}

/// The methods this node knows, each with the spellings a request may use for it (a DCV wire
/// name, an IANA ACME label, `ca-tbr-<N>`) and every label that names its mechanism.
///
/// BR 4.2.2.1.2: a CA "MUST interpret and process validationmethods labels formed by
/// concatenating the string 'ca-tbr-' with the BR 3.2.2.4 subsection number", and "If a CA
/// performs domain validation using a mechanism that can be represented by multiple labels (e.g.
/// 'http-01' and 'ca-tbr-19'), the CA SHOULD accept any of the labels". So ACME dns-01, a DNS
/// Change under BR 3.2.2.4.7, is named by `dns-01` and `ca-tbr-7`; a non-ACME DNS Change is
/// `ca-tbr-7` only (it is not the dns-01 mechanism). Methods 2, 4, 8, 12 and 15 are not run by
/// this node, but a CA using them still asks for CAA, so they have their `ca-tbr-` label.
/// Removed methods (1, 3, 5, 6, 9, 10, 11) have none: a CA may not use them.
const METHODS: [Method; 16] = [
    Method {
        spellings: &["ca-tbr-2"],
        labels: &["ca-tbr-2"],
    },
    Method {
        spellings: &["ca-tbr-4"],
        labels: &["ca-tbr-4"],
    },
    Method {
        spellings: &["dns-change", "ca-tbr-7"],
        labels: &["ca-tbr-7"],
    },
    Method {
        spellings: &["acme-dns-01", "dns-01"],
        labels: &["dns-01", "ca-tbr-7"],
    },
    Method {
        spellings: &["ip-address", "ca-tbr-8"],
        labels: &["ca-tbr-8"],
    },
    Method {
        spellings: &["ca-tbr-12"],
        labels: &["ca-tbr-12"],
    },
    Method {
        spellings: &["contact-email-caa", "ca-tbr-13"],
        labels: &["ca-tbr-13"],
    },
    Method {
        spellings: &["contact-email-txt", "ca-tbr-14"],
        labels: &["ca-tbr-14"],
    },
    Method {
        spellings: &["ca-tbr-15"],
        labels: &["ca-tbr-15"],
    },
    Method {
        spellings: &["contact-phone-txt", "ca-tbr-16"],
        labels: &["ca-tbr-16"],
    },
    Method {
        spellings: &["contact-phone-caa", "ca-tbr-17"],
        labels: &["ca-tbr-17"],
    },
    Method {
        spellings: &["website-change", "ca-tbr-18"],
        labels: &["ca-tbr-18"],
    },
    Method {
        spellings: &["acme-http-01", "http-01", "ca-tbr-19"],
        labels: &["http-01", "ca-tbr-19"],
    },
    Method {
        spellings: &["acme-tls-alpn-01", "tls-alpn-01", "ca-tbr-20"],
        labels: &["tls-alpn-01", "ca-tbr-20"],
    },
    Method {
        spellings: &["acme-dns-account-01", "dns-account-01", "ca-tbr-21"],
        labels: &["dns-account-01", "ca-tbr-21"],
    },
    Method {
        spellings: &["dns-persist-01", "ca-tbr-22"],
        labels: &["dns-persist-01", "ca-tbr-22"],
    },
];

/// Every `validationmethods` label that names `method` (a request's method, spelled as a DCV
/// wire name, an IANA ACME label or `ca-tbr-<N>`), or `None` for a method this node does not
/// know. CA-specific `ca-…` labels other than `ca-tbr-<N>` are not known: BR 4.2.2.1.2 gives
/// non-ACME methods the `ca-tbr-` syntax "to avoid conflicts and provide consistency across CAs"
/// (ballot summary), and a label whose meaning only one CA's CPS defines cannot be checked by a
/// perspective. Such a request fails closed on a record with `validationmethods`.
pub fn method_labels(method: &str) -> Option<&'static [&'static str]> {
    METHODS
        .iter()
        .find(|known| known.spellings.contains(&method))
        .map(|known| known.labels)
}

/// Why a record naming the CA does not authorize this request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParameterFailure {
    /// More than one `accounturi` (RFC 8657 §3: unsatisfiable).
    AccountUriRepeated,
    /// The `accounturi` value is not a URI (RFC 8657 §3: unsatisfiable).
    AccountUriNotUri {
        /// The value.
        value: String,
    },
    /// The record names an account and the request carries none.
    AccountUriWithoutAccount {
        /// The record's account URI.
        value: String,
    },
    /// The record's account is none of the request's accounts.
    AccountUriOtherAccount {
        /// The record's account URI.
        value: String,
        /// The request's account URIs.
        accounts: Vec<String>,
    },
    /// More than one `validationmethods` (unsatisfiable, as Boulder; RFC 8657 is silent).
    MethodsRepeated,
    /// The value is not a comma list of `1*(ALPHA / DIGIT / "-")` labels (RFC 8657 §4 ABNF).
    MethodsMalformed {
        /// The value.
        value: String,
    },
    /// The record restricts methods and the request names none.
    MethodsWithoutMethod {
        /// The value.
        value: String,
    },
    /// The request's method is not one this node has labels for.
    MethodUnknown {
        /// The record's value.
        value: String,
        /// The request's method.
        method: String,
    },
    /// None of the method's labels is listed.
    MethodNotListed {
        /// The record's value.
        value: String,
        /// The labels that name the request's method.
        labels: &'static [&'static str],
        /// A listed label equals one of ours but for ASCII case (matching is exact).
        differs_only_in_case: bool,
    },
}

impl fmt::Display for ParameterFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AccountUriRepeated => f.write_str("accounturi appears more than once"),
            Self::AccountUriNotUri { value } => write!(f, "accounturi {value:?} is not a URI"),
            Self::AccountUriWithoutAccount { value } => write!(
                f,
                "accounturi {value:?} requires an account and the request names none"
            ),
            Self::AccountUriOtherAccount { value, accounts } => write!(
                f,
                "accounturi {value:?} is none of the request's accounts {accounts:?}"
            ),
            Self::MethodsRepeated => f.write_str("validationmethods appears more than once"),
            Self::MethodsMalformed { value } => write!(
                f,
                "validationmethods {value:?} is not a list of method labels"
            ),
            Self::MethodsWithoutMethod { value } => write!(
                f,
                "validationmethods {value:?} restricts methods and the request names none"
            ),
            Self::MethodUnknown { value, method } => write!(
                f,
                "validationmethods {value:?} cannot allow {method:?}, which is not an ACME method \
                 or a BR ca-tbr-<N> method this node knows"
            ),
            Self::MethodNotListed {
                value,
                labels,
                differs_only_in_case,
            } => {
                write!(
                    f,
                    "validationmethods {value:?} lists none of {labels:?}, the labels of the method used"
                )?;
                if *differs_only_in_case {
                    f.write_str(
                        " (a label differs only in case; labels are lower case and matched \
                         exactly unless [caa] case_insensitive_method_labels is set)",
                    )?;
                }
                Ok(())
            }
        }
    }
}

/// Whether the record's parameters let this request through: RFC 8657 §3 (`accounturi`) and §4
/// (`validationmethods`) as BR 4.2.2.1.2 amends them.
pub fn satisfied(
    parameters: &[(String, String)],
    accounts: &[&str],
    method: Option<&str>,
    case: LabelCase,
) -> Result<(), ParameterFailure> {
    account_satisfied(parameters, accounts)?;
    methods_satisfied(parameters, method, case)
}

/// RFC 8657 §3: one `accounturi`, a URI, recognised as the requesting account. BR 4.2.2.1.2
/// lets the CA also recognise a Parent Account it maps the requesting ACME account to; the
/// primary sends all of them, and any exact match satisfies the record.
fn account_satisfied(
    parameters: &[(String, String)],
    accounts: &[&str],
) -> Result<(), ParameterFailure> {
    let mut values = parameters
        .iter()
        .filter(|(tag, _)| tag == "accounturi")
        .map(|(_, value)| value.as_str());
    let Some(value) = values.next() else {
        return Ok(());
    };
    if values.next().is_some() {
        return Err(ParameterFailure::AccountUriRepeated);
    }
    if !is_uri(value) {
        return Err(ParameterFailure::AccountUriNotUri {
            value: value.to_owned(),
        });
    }
    if accounts.is_empty() {
        return Err(ParameterFailure::AccountUriWithoutAccount {
            value: value.to_owned(),
        });
    }
    if accounts.contains(&value) {
        return Ok(());
    }
    Err(ParameterFailure::AccountUriOtherAccount {
        value: value.to_owned(),
        accounts: accounts.iter().map(|&account| account.to_owned()).collect(),
    })
}

/// RFC 8657 §4: the method used must be named by a listed label; BR 4.2.2.1.2 adds the
/// `ca-tbr-<N>` labels, the equivalence of labels naming one mechanism, and the case switch.
/// `value = [*(label ",") label]` allows an empty list, which permits no method.
fn methods_satisfied(
    parameters: &[(String, String)],
    method: Option<&str>,
    case: LabelCase,
) -> Result<(), ParameterFailure> {
    let mut values = parameters
        .iter()
        .filter(|(tag, _)| tag == "validationmethods")
        .map(|(_, value)| value.as_str());
    let Some(value) = values.next() else {
        return Ok(());
    };
    if values.next().is_some() {
        return Err(ParameterFailure::MethodsRepeated);
    }
    let listed: Vec<&str> = if value.is_empty() {
        Vec::new()
    } else {
        value.split(',').collect()
    };
    if !listed.iter().all(|label| is_method_label(label)) {
        return Err(ParameterFailure::MethodsMalformed {
            value: value.to_owned(),
        });
    }
    let Some(method) = method else {
        return Err(ParameterFailure::MethodsWithoutMethod {
            value: value.to_owned(),
        });
    };
    let Some(labels) = method_labels(method) else {
        return Err(ParameterFailure::MethodUnknown {
            value: value.to_owned(),
            method: method.to_owned(),
        });
    };
    let names = |label: &str, ours: &str| match case {
        LabelCase::Exact => label == ours,
        LabelCase::Insensitive => label.eq_ignore_ascii_case(ours),
    };
    if listed
        .iter()
        .any(|label| labels.iter().any(|ours| names(label, ours)))
    {
        return Ok(());
    }
    let differs_only_in_case = listed
        .iter()
        .any(|label| labels.iter().any(|ours| label.eq_ignore_ascii_case(ours)));
    Err(ParameterFailure::MethodNotListed {
        value: value.to_owned(),
        labels,
        differs_only_in_case,
    })
}

/// `label = 1*(ALPHA / DIGIT / "-")` (RFC 8657 §4).
fn is_method_label(label: &str) -> bool {
    !label.is_empty()
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A URI by RFC 3986's first rule: `scheme ":" rest`, scheme = ALPHA *(ALPHA / DIGIT / + - .),
/// and something after the colon.
fn is_uri(value: &str) -> bool {
    let Some((scheme, rest)) = value.split_once(':') else {
        return false;
    };
    let mut bytes = scheme.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        && !rest.is_empty()
}
