//! Fast failure (as Unbound does it): when every server of a zone is backed off after timing
//! out, a lookup fails at once with a timeout-kind error instead of waiting out more timeouts,
//! the server gets one probe each time its backoff ends, and lookups answer again once it does.

use std::time::Duration;

use hickory_proto::rr::{Name, RecordType};
use mpic_node::checks::caa::lookup::climb;
use mpic_node::dns::{DnsError, Limits, Resolver as _};
use mpic_protocol::ProblemKind;
use tokio::time::Instant;

use super::Lab;

// One silent server for `one.test`: after its first lookup's two timeouts, lookups fail in
// milliseconds (≪ the 200 ms query timeout) for the next 3 s while the server sees one probe;
// when it answers again, lookups succeed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zone_whose_only_server_is_backed_off_fails_at_once_and_recovers() {
    let lab = Lab::start().await;
    let query_timeout = Duration::from_millis(200);
    let (dns, metrics) = lab.client_with_metrics(Limits {
        query_timeout,
        ..Limits::default()
    });
    let lookup = |name: String| {
        let dns = dns.clone();
        async move {
            let name = Name::from_ascii(name).unwrap();
            let started = Instant::now();
            let result = dns
                .lookup(
                    &name,
                    RecordType::CAA,
                    Instant::now() + Duration::from_secs(5),
                )
                .await;
            (result, started.elapsed())
        }
    };
    // The delegation to `one.test` is cached while the server answers.
    assert!(lookup("permit.one.test.".into()).await.0.is_ok());
    lab.leaf.set_silent(true);
    let before = lab.leaf.query_count();
    let (first, _) = lookup("n0.one.test.".into()).await;
    assert!(
        matches!(&first, Err(DnsError::NoAnswer { attempts, .. }) if attempts.len() == 2),
        "{first:?}"
    );
    let window = Instant::now();
    let (mut fast, mut probes, mut slowest_fast) = (0_u64, 0, Duration::ZERO);
    let mut i = 1;
    while window.elapsed() < Duration::from_secs(3) {
        let (result, latency) = lookup(format!("n{i}.one.test.")).await;
        i += 1;
        match result {
            Err(error @ DnsError::ServersBackedOff { .. }) => {
                assert!(error.is_timeout(), "{error}");
                fast += 1;
                slowest_fast = slowest_fast.max(latency);
            }
            Err(error) if error.is_timeout() => probes += 1,
            other => panic!("{other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sent = lab.leaf.query_count() - before;
    // Two for the first lookup (the retry), then one probe as the 2 s backoff ends.
    assert!(
        (3..=4).contains(&sent),
        "the silent server got {sent} queries"
    );
    assert_eq!(u64::try_from(probes).unwrap(), sent - 2);
    assert!(fast >= 50, "{fast} fast failures");
    assert!(
        slowest_fast < query_timeout / 4,
        "slowest fast failure {slowest_fast:?}"
    );
    assert_eq!(metrics.fast_failures.get(), fast);
    // A CAA check meanwhile fails as a timeout, as before.
    let deadline = Instant::now() + Duration::from_secs(5);
    let error = climb(&dns, "x.one.test", deadline).await.unwrap_err();
    assert_eq!(
        error.problem.kind,
        ProblemKind::Timeout,
        "{:?}",
        error.problem
    );
    // The server comes back: the next probe gets an answer and lookups succeed again.
    lab.leaf.set_silent(false);
    let back = Instant::now();
    let recovered = loop {
        let (result, _) = lookup(format!("r{i}.one.test.")).await;
        i += 1;
        if result.is_ok() {
            break back.elapsed();
        }
        assert!(back.elapsed() < Duration::from_secs(10), "never recovered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for j in 0..5 {
        let (result, latency) = lookup(format!("after{j}.one.test.")).await;
        assert!(result.is_ok(), "{result:?}");
        assert!(latency < query_timeout, "{latency:?}");
    }
    eprintln!(
        "fast failures: {fast} (slowest {slowest_fast:?}), queries to the silent server: {sent}, \
         recovered {recovered:?} after it answered again"
    );
}
