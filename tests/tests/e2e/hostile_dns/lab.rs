//! The lab of the hostile-DNS cases: a node forwarding to a scripted hostile server, a primary
//! for it, and the dns-change check every case runs.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use mpic_protocol::client::Primary;
use mpic_protocol::{Check, DcvCheck, DcvMethod, ResultPayload, Rir, Target};
use mpic_tests::hostile::dns::{HostileDns, Script};
use mpic_tests::{NodeOptions, NodeProcess, node::primary};

use crate::support::{Lab, request_within};

/// The Random Value every dns-change check here looks for.
pub(super) const VALUE: &str = "rv-HostileRandomValue0123456789abcdef";

/// Slack over a deadline for the QUIC round trip and a debug build on a busy 2-core machine.
pub(super) const SLACK: Duration = Duration::from_millis(1500);

/// A node forwarding to a hostile server, and a primary for it.
pub(super) struct DnsLab {
    _lab: Lab,
    pub(super) dns: HostileDns,
    pub(super) node: NodeProcess,
    pub(super) primary: Primary,
}

/// Starts `script` on 127.0.0.1 and a node forwarding to it (no answer cache, no DNSSEC, so
/// every check sends fresh queries) with `dns_lines` added to its `[dns]` table.
pub(super) async fn start(name: &str, script: Script, dns_lines: &str) -> DnsLab {
    let dns = HostileDns::start(IpAddr::from([127, 0, 0, 1]), script)
        .await
        .unwrap();
    let lab = Lab::new();
    let table = format!(
        "mode = \"forward\"\nupstreams = [\"{}\"]\ndnssec = \"off\"\nmax_cache_ttl = \"0s\"\n{dns_lines}",
        dns.address()
    );
    let options = NodeOptions::new(name, Rir::Arin).with("dns", &table);
    let node = NodeProcess::start(lab.dir.path(), &lab.credentials, &options).unwrap();
    let primary = primary(&lab.credentials, &[&node]).unwrap();
    DnsLab {
        _lab: lab,
        dns,
        node,
        primary,
    }
}

/// A dns-change check for `VALUE` under `_dc.<domain>`.
pub(super) fn dns_change(domain: &str) -> Target {
    Target {
        identifier: domain.into(),
        check: Check::Dcv(DcvCheck {
            prefix: Some("_dc".into()),
            expected: Some(VALUE.into()),
            ..crate::web::dcv(DcvMethod::DnsChange)
        }),
    }
}

/// Runs one dns-change check with `deadline`; asserts the answer came in time.
pub(super) async fn check(
    lab: &DnsLab,
    domain: &str,
    deadline: Duration,
) -> (ResultPayload, Duration) {
    let request = request_within(vec![dns_change(domain)], deadline);
    let started = Instant::now();
    let mut results = lab.primary.query(0, &request).await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(results.len(), 1, "{domain}: {results:?}");
    assert!(
        elapsed < deadline + SLACK,
        "{domain}: answered after {elapsed:?}, deadline {deadline:?}"
    );
    (results.remove(0), elapsed)
}
