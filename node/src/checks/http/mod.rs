//! The HTTP-based DCV methods (ACME http-01, website change v2): build the URL, fetch it with
//! the node's fetcher (fresh lookups, address guard, IPv6 first, redirect rules), decide, and
//! report every hop as evidence.

pub mod decide;
#[cfg(test)]
mod tests;

use mpic_protocol::{Problem, ProblemKind};
use tokio::time::Instant;

use crate::checks::dcv::request::HttpDcv;
use crate::checks::{CheckReport, Evidence};
use crate::dns::Resolver;
use crate::http::fetch::{FetchError, Fetcher, Hop};
use crate::http::outcome::spaced;

/// Runs one HTTP-based DCV check for `identifier`.
pub async fn check<R: Resolver>(
    fetcher: &Fetcher,
    resolver: &R,
    identifier: &str,
    dcv: &HttpDcv,
    deadline: Instant,
) -> CheckReport {
    let url = match dcv {
        HttpDcv::AcmeHttp01 {
            token,
            key_authorization,
        } => decide::http01_url(identifier, token, key_authorization),
        HttpDcv::WebsiteChange {
            file,
            expected,
            scheme,
        } => decide::website_change_url(identifier, file, *scheme, expected),
    };
    let url = match url {
        Ok(url) => url,
        Err(error) => {
            return report(
                Vec::new(),
                Err(Problem {
                    kind: ProblemKind::Malformed,
                    detail: error.to_string(),
                }),
            );
        }
    };
    let outcome = fetcher.fetch(resolver, url, deadline).await;
    let verdict = match outcome.result {
        Err(error) => Err(problem(&error)),
        Ok(fetched) => match dcv {
            HttpDcv::AcmeHttp01 {
                key_authorization, ..
            } => decide::decide_http01(&fetched, key_authorization),
            HttpDcv::WebsiteChange { expected, .. } => {
                decide::decide_website_change(&fetched, expected)
            }
        }
        .map_err(|refusal| Problem {
            kind: ProblemKind::Unauthorized,
            detail: with_attempts(refusal.to_string(), &outcome.hops),
        }),
    };
    report(outcome.hops, verdict)
}

/// The problem a fetch failure is reported as.
pub fn problem(error: &FetchError) -> Problem {
    let kind = match error {
        FetchError::NoHost { .. } | FetchError::Scheme { .. } => ProblemKind::Malformed,
        FetchError::Resolve { source, .. } => source.problem_kind(),
        FetchError::Connection { .. } | FetchError::Http { .. } => ProblemKind::Connection,
        FetchError::Timeout { .. } => ProblemKind::Timeout,
        FetchError::Redirect { .. } => ProblemKind::Redirect,
    };
    Problem {
        kind,
        detail: error.to_string(),
    }
}

/// Says which addresses failed before the one that answered ("[::1]:80 connect failed …;
/// then 127.0.0.1:80 answered").
fn with_attempts(detail: String, hops: &[Hop]) -> String {
    let Some(last) = hops.last() else {
        return detail;
    };
    if last.attempts.is_empty() {
        return detail;
    }
    let failed = spaced(&last.attempts);
    let answered = last
        .address
        .map_or_else(|| "another address".to_owned(), |a| a.to_string());
    format!("{failed}; then {answered} answered: {detail}")
}

fn report(hops: Vec<Hop>, verdict: Result<(), Problem>) -> CheckReport {
    let dnssec = crate::dns::worst_status(hops.iter().filter_map(|hop| hop.dnssec));
    let evidence = Evidence {
        http: hops.iter().map(Hop::evidence).collect(),
        ..Evidence::default()
    };
    CheckReport::from_verdict(verdict, dnssec, evidence)
}
