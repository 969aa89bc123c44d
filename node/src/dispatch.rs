//! Routes each target to the check that serves it and enforces the target's deadline. Check
//! kinds and methods this version does not implement are answered `unsupported` — never a pass.

use std::sync::Arc;
use std::time::Duration;

use mpic_protocol::{Check, DcvMethod, ProblemKind, Target, TlsEvidence};
use tokio::time::Instant;

use crate::checks::CheckReport;
use crate::checks::caa::policy::PolicyOptions;
use crate::checks::dcv::request::{DcvRequest, DecodeError};
use crate::dns::DnsClient;
use crate::http::fetch::{FetchOptions, Fetcher};

/// Most account URIs in one CAA check (`account_uri` and `account_uris`).
const MAX_ACCOUNT_URIS: usize = mpic_protocol::request::MAX_ACCOUNT_URIS;
/// Longest identifier accepted (RFC 1035 §2.3.4: 253 octets, plus `*.`).
const MAX_IDENTIFIER_LEN: usize = mpic_protocol::request::MAX_IDENTIFIER_LEN;

/// Runs checks with the node's own network clients.
#[derive(Debug)]
pub struct Dispatcher {
    /// The node's resolver (used by the CAA and DNS checks).
    pub dns: DnsClient,
    /// CAA choices the standards leave to the CA.
    pub caa: PolicyOptions,
    /// The HTTP and TLS-ALPN clients.
    pub web: WebClients,
}

/// The clients of the HTTP- and TLS-based methods.
#[derive(Debug)]
pub struct WebClients {
    /// The HTTP fetcher (http-01, website change).
    pub fetcher: Fetcher,
    /// The TLS client of tls-alpn-01.
    pub tls_alpn: Arc<rustls::ClientConfig>,
}

impl WebClients {
    /// Clients with these options.
    pub fn new(options: FetchOptions) -> Result<Self, rustls::Error> {
        Ok(Self {
            fetcher: Fetcher::new(options)?,
            tls_alpn: crate::checks::tls_alpn::prober::client_config()?,
        })
    }
}

impl Dispatcher {
    /// A dispatcher using this resolver and these web clients.
    pub fn new(dns: DnsClient, web: WebClients) -> Self {
        Self {
            dns,
            caa: PolicyOptions::default(),
            web,
        }
    }

    /// Runs the check for one target, finishing by `deadline` whatever happens.
    pub async fn run(&self, target: &Target, deadline: Instant) -> CheckReport {
        if let Err(error) = validate_identifier(&target.identifier) {
            return CheckReport::fail(ProblemKind::Malformed, error.to_string());
        }
        let budget = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout_at(deadline, self.run_check(target, deadline)).await {
            Ok(report) => report,
            Err(_) => CheckReport::fail(
                ProblemKind::Timeout,
                format!(
                    "the check did not finish within its {} ms budget",
                    budget.as_millis()
                ),
            ),
        }
    }

    async fn run_check(&self, target: &Target, deadline: Instant) -> CheckReport {
        match &target.check {
            Check::Caa(caa) if caa.accounts().count() > MAX_ACCOUNT_URIS => CheckReport::fail(
                ProblemKind::Malformed,
                format!(
                    "the CAA check carries {} account URIs, at most {MAX_ACCOUNT_URIS} are accepted",
                    caa.accounts().count()
                ),
            ),
            // Each check's future is boxed: the checks differ in size by kilobytes (http-01 and
            // tls-alpn-01 hold a TLS and HTTP client state), and an unboxed match would make
            // every in-flight CAA check as large as the largest of them.
            Check::Caa(caa) => {
                Box::pin(crate::checks::caa::lookup::check(
                    &self.dns,
                    &target.identifier,
                    caa,
                    &self.caa,
                    deadline,
                ))
                .await
            }
            Check::Dcv(dcv) => match DcvRequest::decode(dcv) {
                Ok(request) => self.run_dcv(&target.identifier, request, deadline).await,
                Err(error) => decode_failure(&dcv.method, &error),
            },
            Check::Unknown { kind } => {
                CheckReport::unsupported(format!("check kind {kind:?} is not known to this node"))
            }
            other => CheckReport::unsupported(format!(
                "check kind {:?} is not known to this node",
                other.kind()
            )),
        }
    }

    /// Runs the check the decoded method calls for: the one place a DCV method is routed.
    async fn run_dcv(
        &self,
        identifier: &str,
        request: DcvRequest,
        deadline: Instant,
    ) -> CheckReport {
        match request {
            DcvRequest::Dns(dns) => {
                Box::pin(crate::checks::dcv::lookup::check(
                    &self.dns, identifier, &dns, deadline,
                ))
                .await
            }
            DcvRequest::Http(http) => {
                Box::pin(crate::checks::http::check(
                    &self.web.fetcher,
                    &self.dns,
                    identifier,
                    &http,
                    deadline,
                ))
                .await
            }
            DcvRequest::TlsAlpn(tls_alpn) => {
                Box::pin(crate::checks::tls_alpn::check(
                    self.web.fetcher.options(),
                    &self.web.tls_alpn,
                    &self.dns,
                    identifier,
                    &tls_alpn,
                    deadline,
                ))
                .await
            }
        }
    }
}

/// The report of a DCV check whose wire form did not decode: `unsupported` for a method this
/// node does not run, else `malformed` naming the field. tls-alpn-01 has always reported its
/// (empty) TLS evidence with a malformed request; kept so the signed evidence is unchanged.
fn decode_failure(method: &DcvMethod, error: &DecodeError) -> CheckReport {
    if let DecodeError::Unsupported { .. } = error {
        return CheckReport::unsupported(error.to_string());
    }
    let mut report = CheckReport::fail(ProblemKind::Malformed, error.to_string());
    if *method == DcvMethod::AcmeTlsAlpn01 {
        report.evidence.tls = Some(TlsEvidence::default());
    }
    report
}

/// Why an identifier is refused before any check runs (answered `malformed`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum IdentifierError {
    /// The identifier is empty.
    #[error("identifier is empty")]
    Empty,
    /// The identifier is longer than [`MAX_IDENTIFIER_LEN`].
    #[error("identifier is {len} bytes, the limit is {MAX_IDENTIFIER_LEN}")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The identifier holds a space, a control character or a non-ASCII byte.
    #[error("identifier {identifier:?} must be ASCII without spaces (use A-labels for IDNs)")]
    NotAscii {
        /// The identifier as given.
        identifier: String,
    },
}

/// Checks the identifier's form: ASCII (A-labels for IDNs), not empty, not too long, no spaces
/// or control characters. The DNS layer checks label syntax.
fn validate_identifier(identifier: &str) -> Result<(), IdentifierError> {
    if identifier.is_empty() {
        return Err(IdentifierError::Empty);
    }
    if identifier.len() > MAX_IDENTIFIER_LEN {
        return Err(IdentifierError::TooLong {
            len: identifier.len(),
        });
    }
    if !identifier.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(IdentifierError::NotAscii {
            identifier: identifier.to_owned(),
        });
    }
    Ok(())
}

/// The metric label of a target's method (`caa` for CAA, the DCV method name, else `unknown`).
pub fn method_label(check: &Check) -> &str {
    match check {
        Check::Caa(_) => "caa",
        Check::Dcv(dcv) if !matches!(dcv.method, DcvMethod::Other(_)) => dcv.method.as_str(),
        _ => "unknown",
    }
}

/// The metric label of a check kind (`caa`, `dcv`, `unknown`).
pub fn kind_label(check: &Check) -> &'static str {
    match check {
        Check::Caa(_) => "caa",
        Check::Dcv(_) => "dcv",
        _ => "unknown",
    }
}

/// How long a check took, for the histogram.
pub fn seconds(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64()
}

#[cfg(test)]
mod tests {
    use mpic_protocol::{CaaCheck, DcvCheck, DcvMethod, Outcome};

    use super::*;

    fn target(identifier: &str, check: Check) -> Target {
        Target {
            identifier: identifier.into(),
            check,
        }
    }

    fn dispatcher() -> Dispatcher {
        let config = crate::config::Config::from_toml_str(
            "[perspective]\nid = \"t\"\nrir = \"ARIN\"\nlocation = \"x\"\n[quic]\ncertificate = \"c\"\nprivate_key = \"k\"\nclient_ca = \"a\"\n[signing]\nkey = \"s\"\n",
            std::path::Path::new("/"),
        )
        .unwrap();
        let settings = crate::dns::DnsSettings::from_config(&config.dns).unwrap();
        Dispatcher::new(
            DnsClient::new(
                settings,
                crate::metrics::DnsMetrics::unregistered().unwrap(),
            ),
            WebClients::new(FetchOptions::default()).unwrap(),
        )
    }

    /// Memory per in-flight validation is mostly the futures it holds: the check's, and the
    /// lookups it waits on. The rare, large states (other checks, the carve-out, DNSSEC
    /// validation, inline resolutions) are boxed; this keeps it that way (sizes of the debug
    /// build, which are larger than release's).
    #[test]
    fn in_flight_caa_futures_stay_small() {
        let dispatcher = dispatcher();
        let deadline = Instant::now() + Duration::from_secs(1);
        let caa = target("example.com", Check::Caa(CaaCheck::default()));
        let name = hickory_proto::rr::Name::from_ascii("example.com.").unwrap();
        let request = CaaCheck::default();
        let run = dispatcher.run(&caa, deadline);
        let check = crate::checks::caa::lookup::check(
            &dispatcher.dns,
            "example.com",
            &request,
            &dispatcher.caa,
            deadline,
        );
        let lookup = crate::dns::Resolver::lookup(
            &dispatcher.dns,
            &name,
            hickory_proto::rr::RecordType::CAA,
            deadline,
        );
        let sizes = [
            ("dispatch run", size_of_val(&run)),
            ("CAA check", size_of_val(&check)),
            ("lookup", size_of_val(&lookup)),
        ];
        for (future, size) in sizes {
            assert!(size <= 1536, "the {future} future is {size} bytes");
        }
    }

    #[tokio::test]
    async fn each_check_not_built_yet_is_unsupported_never_pass() {
        let dispatcher = dispatcher();
        let deadline = Instant::now() + Duration::from_secs(1);
        let dcv = DcvCheck {
            url_scheme: None,
            record_type: None,
            exact_match: false,
            case_insensitive: false,
            method: DcvMethod::Other("x-future-method".into()),
            expected: None,
            key_authorization: None,
            token: None,
            prefix: None,
            issuer_domain: None,
            account_uri: None,
            wildcard: false,
        };
        for check in [Check::Dcv(dcv), Check::Unknown { kind: "x".into() }] {
            let report = dispatcher
                .run(&target("example.com", check), deadline)
                .await;
            assert_eq!(report.outcome, Outcome::Unsupported);
            assert_eq!(
                report.problem.map(|p| p.kind),
                Some(ProblemKind::Unsupported)
            );
        }
    }

    #[tokio::test]
    async fn malformed_identifiers_fail_as_malformed() {
        let dispatcher = dispatcher();
        let deadline = Instant::now() + Duration::from_secs(1);
        let long = "a".repeat(256);
        for identifier in [
            "",
            "has space.example",
            "tab\t.example",
            "bücher.example",
            long.as_str(),
        ] {
            let report = dispatcher
                .run(
                    &target(identifier, Check::Caa(CaaCheck::default())),
                    deadline,
                )
                .await;
            assert_eq!(report.outcome, Outcome::Fail, "{identifier:?}");
            assert_eq!(
                report.problem.map(|p| p.kind),
                Some(ProblemKind::Malformed),
                "{identifier:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_caa_check_with_too_many_account_uris_is_malformed() {
        let dispatcher = dispatcher();
        let deadline = Instant::now() + Duration::from_secs(1);
        let accounts = |count: usize| -> Vec<String> {
            (0..count)
                .map(|i| format!("https://ca.example/acct/{i}"))
                .collect()
        };
        let check = CaaCheck {
            issuer_domains: vec!["ca.example".into()],
            account_uri: Some("https://ca.example/acct/x".into()),
            account_uris: accounts(MAX_ACCOUNT_URIS),
            ..CaaCheck::default()
        };
        let report = dispatcher
            .run(&target("example.com", Check::Caa(check)), deadline)
            .await;
        assert_eq!(report.outcome, Outcome::Fail);
        let problem = report.problem.unwrap();
        assert_eq!(problem.kind, ProblemKind::Malformed);
        assert!(problem.detail.contains("17 account URIs"), "{problem:?}");
    }
}
