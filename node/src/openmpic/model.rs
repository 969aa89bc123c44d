//! Open MPIC's remote-perspective request shapes (`open-mpic-core` 6.x:
//! `CaaCheckRequest`, `DcvCheckRequest` and the `DcvParameters` union), read strictly, and
//! their translation into this node's [`Target`].
//!
//! Every field Open MPIC defines is named here, so a request that sets one we cannot honour
//! (`http_headers`, `match_regex`, S/MIME CAA, a `dns_name_prefix` on the address methods) is
//! refused with a message instead of being run with the constraint silently dropped; unknown
//! fields are refused too.

use mpic_protocol::{CERTIFICATE_TYPE_SMIME, CaaCheck, Check, DcvCheck, DcvMethod, Target};
use serde::Deserialize;

/// `CaaCheckRequest`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaaRequest {
    /// The domain name (possibly `*.`-prefixed) or IP address.
    pub domain_or_ip_target: String,
    /// The coordinator's trace id; echoed as the signed result's `request_id` when usable.
    #[serde(default)]
    pub trace_identifier: Option<String>,
    /// CAA parameters.
    #[serde(default)]
    pub caa_check_parameters: Option<CaaParameters>,
}

/// `CaaCheckParameters`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaaParameters {
    /// `tls-server` (default) or `s-mime`.
    #[serde(default)]
    pub certificate_type: Option<String>,
    /// The CA's Issuer Domain Names; absent: `openmpic.caa_domains`.
    #[serde(default)]
    pub caa_domains: Option<Vec<String>>,
    /// The BR 3.2.2.8 lookup-failure carve-out.
    #[serde(default)]
    pub allow_lookup_failure: Option<bool>,
}

/// `DcvCheckRequest`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DcvRequest {
    /// The domain name or IP address.
    pub domain_or_ip_target: String,
    /// The coordinator's trace id.
    #[serde(default)]
    pub trace_identifier: Option<String>,
    /// The method and its parameters.
    pub dcv_check_parameters: DcvParameters,
}

/// The union of Open MPIC's `Dcv*ValidationParameters`, discriminated by `validation_method`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // Field names and meanings are Open MPIC's; see open_mpic_core.check_parameters.
pub struct DcvParameters {
    pub validation_method: String,
    #[serde(default)]
    pub require_exact_case: Option<bool>,
    #[serde(default)]
    pub challenge_value: Option<String>,
    #[serde(default)]
    pub http_token_path: Option<String>,
    #[serde(default)]
    pub url_scheme: Option<String>,
    #[serde(default)]
    pub http_headers: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    pub match_regex: Option<String>,
    #[serde(default)]
    pub dns_name_prefix: Option<String>,
    #[serde(default)]
    pub dns_record_type: Option<String>,
    #[serde(default)]
    pub require_exact_match: Option<bool>,
    #[serde(default)]
    pub issuer_domain_names: Option<Vec<String>>,
    #[serde(default)]
    pub expected_account_uri: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub key_authorization: Option<String>,
    #[serde(default)]
    pub key_authorization_hash: Option<String>,
}

/// A request this node cannot run as asked; answered HTTP 400 with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

fn refuse(message: impl Into<String>) -> Refusal {
    Refusal(message.into())
}

impl CaaRequest {
    /// This node's CAA target; `default_domains` stands in for absent `caa_domains`.
    pub fn target(&self, default_domains: &[String]) -> Result<Target, Refusal> {
        let parameters = self.caa_check_parameters.clone().unwrap_or_default();
        // Open MPIC's `tls-server` is our default; `s-mime` selects `issuemail` (RFC 9495 §4)
        // over the target, which is then the domain part of the mailbox.
        let certificate_type = match parameters.certificate_type.as_deref() {
            None | Some("tls-server") => None,
            Some("s-mime") => Some(CERTIFICATE_TYPE_SMIME.to_owned()),
            Some(other) => {
                return Err(refuse(format!(
                    "certificate_type {other:?} is not tls-server or s-mime"
                )));
            }
        };
        let issuer_domains = match parameters.caa_domains {
            Some(domains) if !domains.is_empty() => domains,
            _ if !default_domains.is_empty() => default_domains.to_vec(),
            _ => {
                return Err(refuse(
                    "caa_check_parameters.caa_domains is empty and this node has no openmpic.caa_domains",
                ));
            }
        };
        // Open MPIC decides issuewild from the target's `*.` prefix; so does our CAA check
        // (S/MIME has no wildcard selection).
        let wildcard = certificate_type.is_none() && self.domain_or_ip_target.starts_with("*.");
        Ok(Target {
            identifier: self.domain_or_ip_target.clone(),
            check: Check::Caa(CaaCheck {
                issuer_domains,
                wildcard,
                // open-mpic-core 6.5's CaaCheckParameters carries no account or method (and its
                // checker ignores CAA parameters), so a record with accounturi or
                // validationmethods cannot authorize an Open MPIC request here: it fails closed.
                account_uri: None,
                account_uris: Vec::new(),
                method: None,
                allow_lookup_failure: parameters.allow_lookup_failure.unwrap_or(false),
                certificate_type,
            }),
        })
    }
}

impl DcvRequest {
    /// This node's DCV target for the request's method.
    pub fn target(&self) -> Result<Target, Refusal> {
        let p = &self.dcv_check_parameters;
        if p.http_headers.as_ref().is_some_and(|h| !h.is_empty()) {
            return Err(refuse(
                "http_headers is not supported: this perspective sends only its own headers",
            ));
        }
        if p.match_regex.is_some() {
            return Err(refuse(
                "match_regex is not supported: website-change looks for the challenge value itself (BR 3.2.2.4.18)",
            ));
        }
        let mut check = DcvCheck {
            method: DcvMethod::Other(p.validation_method.clone()),
            expected: None,
            key_authorization: None,
            token: None,
            prefix: None,
            issuer_domain: None,
            account_uri: None,
            wildcard: self.domain_or_ip_target.starts_with("*."),
            url_scheme: None,
            record_type: None,
            exact_match: false,
            case_insensitive: false,
        };
        // Each fills the fields of its own methods; a method none of them knows keeps
        // `DcvMethod::Other` and the dispatcher answers `unsupported` (never a pass).
        http_method_fields(p, &mut check)?;
        dns_method_fields(p, &mut check)?;
        address_method_fields(p, &mut check)?;
        Ok(Target {
            identifier: self.domain_or_ip_target.clone(),
            check: Check::Dcv(check),
        })
    }
}

/// Fills `check` for the HTTP- and TLS-based methods.
fn http_method_fields(p: &DcvParameters, check: &mut DcvCheck) -> Result<(), Refusal> {
    match p.validation_method.as_str() {
        "website-change" => {
            check.method = DcvMethod::WebsiteChange;
            check.expected = Some(required(&p.challenge_value, "challenge_value")?);
            check.token = Some(required(&p.http_token_path, "http_token_path")?);
            check.url_scheme = p.url_scheme.clone();
            if p.require_exact_case == Some(false) {
                return Err(refuse(
                    "require_exact_case = false is not supported for website-change",
                ));
            }
        }
        "acme-http-01" => {
            check.method = DcvMethod::AcmeHttp01;
            check.token = Some(required(&p.token, "token")?);
            check.key_authorization = Some(required(&p.key_authorization, "key_authorization")?);
        }
        "acme-dns-01" => {
            check.method = DcvMethod::AcmeDns01;
            check.expected = Some(required(
                &p.key_authorization_hash,
                "key_authorization_hash",
            )?);
        }
        "acme-tls-alpn-01" => {
            check.method = DcvMethod::AcmeTlsAlpn01;
            check.expected = Some(required(
                &p.key_authorization_hash,
                "key_authorization_hash",
            )?);
        }
        _ => {}
    }
    Ok(())
}

/// Fills `check` for the DNS record methods.
fn dns_method_fields(p: &DcvParameters, check: &mut DcvCheck) -> Result<(), Refusal> {
    match p.validation_method.as_str() {
        "dns-change" => {
            check.method = DcvMethod::DnsChange;
            check.expected = Some(required(&p.challenge_value, "challenge_value")?);
            check.prefix = p
                .dns_name_prefix
                .clone()
                .filter(|prefix| !prefix.is_empty());
            let record_type = required(&p.dns_record_type, "dns_record_type")?;
            // Open MPIC: case only matters for TXT; CNAME and CAA compare without case.
            check.case_insensitive = record_type != "TXT" || p.require_exact_case == Some(false);
            check.record_type = Some(record_type);
            check.exact_match = p.require_exact_match.unwrap_or(false);
        }
        "dns-persistent" => {
            check.method = DcvMethod::DnsPersist01;
            let issuers = p.issuer_domain_names.clone().unwrap_or_default();
            let [issuer] = issuers.as_slice() else {
                return Err(refuse(format!(
                    "issuer_domain_names must name exactly one issuer here, got {}",
                    issuers.len()
                )));
            };
            check.issuer_domain = Some(issuer.clone());
            check.account_uri = Some(required(&p.expected_account_uri, "expected_account_uri")?);
        }
        "contact-email-txt" | "contact-phone-txt" | "contact-email-caa" | "contact-phone-caa" => {
            check.method = p
                .validation_method
                .parse()
                .unwrap_or_else(|_| check.method.clone());
            check.expected = Some(required(&p.challenge_value, "challenge_value")?);
        }
        _ => {}
    }
    Ok(())
}

/// Fills `check` for the IP address methods and dns-account-01.
fn address_method_fields(p: &DcvParameters, check: &mut DcvCheck) -> Result<(), Refusal> {
    match p.validation_method.as_str() {
        // BR 3.2.2.4.8 (retired 2026-03-15): the expected address is `challenge_value`;
        // `dns_record_type` A or AAAA picks the type, as in open-mpic-core's checker. Its
        // `dns_name_prefix` is refused: the BR looks up the FQDN itself.
        "ip-address" => {
            check.method = DcvMethod::IpAddress;
            check.expected = Some(required(&p.challenge_value, "challenge_value")?);
            let record_type = required(&p.dns_record_type, "dns_record_type")?;
            if record_type != "A" && record_type != "AAAA" {
                return Err(refuse(format!(
                    "dns_record_type {record_type:?}: ip-address looks in A or AAAA records only"
                )));
            }
            check.record_type = Some(record_type);
            no_prefix(p)?;
        }
        // BR 3.2.2.5.3: `challenge_value` is the FQDN the PTR record must name.
        "reverse-address-lookup" => {
            check.method = DcvMethod::ReverseAddressLookup;
            check.expected = Some(required(&p.challenge_value, "challenge_value")?);
            if p.dns_record_type.as_deref().is_some_and(|t| t != "PTR") {
                return Err(refuse("reverse-address-lookup looks in PTR records only"));
            }
            no_prefix(p)?;
        }
        // BR 3.2.2.4.21. open-mpic-core 6.5 names the method (`DcvValidationMethod`) but
        // defines no parameters class for it; the shape read here is acme-dns-01's
        // (`key_authorization_hash`) plus the account URI under dns-persistent's name
        // (`expected_account_uri`), from which the node derives the account label.
        "dns-account-01" => {
            check.method = DcvMethod::AcmeDnsAccount01;
            check.expected = Some(required(
                &p.key_authorization_hash,
                "key_authorization_hash",
            )?);
            check.account_uri = Some(required(&p.expected_account_uri, "expected_account_uri")?);
        }
        _ => {}
    }
    Ok(())
}

/// Drives request parsing and translation with arbitrary bytes (the `openmpic_request` fuzz
/// target): the first byte picks `/caa` or `/dcv`. Never panics; whatever translates keeps the
/// request's target and kind.
pub fn exercise(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    if selector % 2 == 0 {
        if let Ok(request) = serde_json::from_slice::<CaaRequest>(body) {
            if let Ok(target) = request.target(&["ca.test".into()]) {
                assert_eq!(target.identifier, request.domain_or_ip_target);
                assert!(matches!(target.check, Check::Caa(_)));
            }
        }
    } else if let Ok(request) = serde_json::from_slice::<DcvRequest>(body) {
        if let Ok(target) = request.target() {
            assert_eq!(target.identifier, request.domain_or_ip_target);
            let Check::Dcv(check) = target.check else {
                panic!("a DCV request became {:?}", target.check.kind());
            };
            assert_eq!(
                check.wildcard,
                request.domain_or_ip_target.starts_with("*.")
            );
        }
    }
}

/// Refuses a non-empty `dns_name_prefix` where the method looks up the name itself.
fn no_prefix(p: &DcvParameters) -> Result<(), Refusal> {
    match p.dns_name_prefix.as_deref() {
        None | Some("") => Ok(()),
        Some(prefix) => Err(refuse(format!(
            "dns_name_prefix {prefix:?} is not supported for {}: the method looks up the target itself",
            p.validation_method
        ))),
    }
}

fn required(value: &Option<String>, name: &str) -> Result<String, Refusal> {
    value
        .clone()
        .ok_or_else(|| refuse(format!("dcv_check_parameters.{name} is required")))
}

#[cfg(test)]
mod tests;
