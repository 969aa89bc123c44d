//! Hostile DNS forwarders (the `hostile::dns` raw fixture) against the real node over QUIC:
//! spoof floods, compression-pointer loops, a 64 KiB TXT RRset, a 100-link CNAME chain and a
//! server that never answers. Each case asserts the signed outcome, the problem kind and that
//! the answer came within the request's deadline.

mod lab;

use std::sync::Arc;
use std::time::Duration;

use mpic_protocol::{Outcome, ProblemKind};
use mpic_tests::hostile::dns::{
    self as wire, CAA, CNAME, PointerLoop, QUESTION_NAME, Query, Script, TXT,
};

use crate::support::{counter, detail, expect_verdict, verdict};
use lab::{SLACK, VALUE, check, start};
/// The honest TXT answer carrying `VALUE`.
fn real_answer(query: &Query) -> Vec<u8> {
    wire::response(
        query,
        &[wire::record(
            &QUESTION_NAME,
            TXT,
            &wire::txt_data(&[VALUE.as_bytes()]),
        )],
    )
}

/// Spoofs of each kind sent before every real UDP answer.
const SPOOFS_PER_KIND: usize = 50;

/// 200 forged replies from the right address and port: wrong id, wrong question (type A),
/// not a response (QR=0), and right id but undecodable.
fn spoofs(query: &Query, real: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::with_capacity(4 * SPOOFS_PER_KIND);
    for i in 0..SPOOFS_PER_KIND {
        let mut wrong_id = real.to_vec();
        let id = query.id.wrapping_add(1 + u16::try_from(i).unwrap());
        wrong_id[..2].copy_from_slice(&id.to_be_bytes());
        out.push(wrong_id);

        let mut wrong_question = real.to_vec();
        let type_at = 12 + query.question.len() - 4;
        wrong_question[type_at..type_at + 2].copy_from_slice(&wire::A.to_be_bytes());
        out.push(wrong_question);

        let mut not_response = real.to_vec();
        not_response[2] &= 0x7f;
        out.push(not_response);

        out.push(real[..real.len() - 3].to_vec());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_dns_a_flood_of_spoofed_replies_loses_to_the_real_answer() {
    let script: Script = Arc::new(|query: &Query| {
        let real = real_answer(query);
        if query.tcp {
            return vec![real];
        }
        let mut replies = spoofs(query, &real);
        replies.push(real);
        replies
    });
    let lab = start("spoofed", script, "query_timeout = \"2s\"").await;
    let reasons = ["id", "question", "not_response", "malformed"];
    let sample =
        |reason: &str| format!("mpic_node_dns_mismatched_responses_total{{reason=\"{reason}\"}}");
    let before: Vec<f64> = reasons
        .iter()
        .map(|r| counter(&lab.node, &sample(r)))
        .collect();
    const CHECKS: usize = 10;
    for i in 0..CHECKS {
        let (result, elapsed) = check(&lab, "flood.test", Duration::from_secs(5)).await;
        assert_eq!(
            verdict(&result),
            (Outcome::Pass, None),
            "check {i}: {}",
            detail(&result)
        );
        eprintln!("spoof flood check {i}: pass in {elapsed:?}");
    }
    let udp_queries = lab.dns.queries() - lab.dns.tcp_queries();
    assert_eq!(udp_queries, CHECKS, "one UDP query per check, no retries");
    for (reason, before) in reasons.iter().zip(before) {
        let delta = counter(&lab.node, &sample(reason)) - before;
        eprintln!("mismatched responses {{reason={reason}}}: +{delta}");
        assert_eq!(
            delta,
            (SPOOFS_PER_KIND * CHECKS) as f64,
            "every {reason} spoof counted"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_dns_compression_pointer_loops_fail_typed_within_the_deadline() {
    let script: Script = Arc::new(|query: &Query| {
        let shape = if query.name.contains(".self-") {
            PointerLoop::SelfPointer
        } else {
            PointerLoop::TwoCycle
        };
        // The "-tcp" names truncate over UDP so the loop arrives over TCP.
        if query.name.contains("-tcp.") && !query.tcp {
            return vec![wire::truncated(query)];
        }
        vec![wire::pointer_loop(query, shape)]
    });
    let lab = start("pointer-loop", script, "query_timeout = \"300ms\"").await;
    // Over UDP an undecodable reply is dropped as a possible spoof (the real answer could still
    // come), so the lookup runs out of time; over TCP nothing else can come on the connection,
    // so the bad message fails the query at once.
    let cases = [
        ("x.self-udp.test", ProblemKind::Timeout),
        ("x.cycle-udp.test", ProblemKind::Timeout),
        ("x.self-tcp.test", ProblemKind::Dns),
        ("x.cycle-tcp.test", ProblemKind::Dns),
    ];
    let deadline = Duration::from_secs(4);
    for (domain, kind) in cases {
        let (result, elapsed) = check(&lab, domain, deadline).await;
        eprintln!(
            "pointer loop {domain}: {:?} in {elapsed:?}: {}",
            verdict(&result),
            detail(&result)
        );
        assert_eq!(
            verdict(&result),
            (Outcome::Fail, Some(kind)),
            "{domain}: {}",
            detail(&result)
        );
        if kind == ProblemKind::Timeout {
            // The evidence says what arrived: the server is not dead, it sends loops.
            let expected = format!(
                "{}: 1 malformed response (compression pointer loop), no valid answer within \
                 0.3 s",
                lab.dns.address()
            );
            assert!(
                detail(&result).contains(&expected),
                "{domain}: {}",
                detail(&result)
            );
            assert!(!detail(&result).contains("timed out"), "{domain}");
        }
    }
    assert!(
        lab.node
            .log()
            .lines()
            .all(|line| !line.contains("panicked"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_dns_a_server_answering_only_with_wrong_ids_is_named_not_timed_out() {
    // Every reply is the real answer under another message ID: ignored as spoofs, counted, and
    // named in the evidence once the query's time runs out.
    let script: Script = Arc::new(|query: &Query| {
        let real = real_answer(query);
        (1..=3u16)
            .map(|i| {
                let mut wrong_id = real.clone();
                wrong_id[..2].copy_from_slice(&query.id.wrapping_add(i).to_be_bytes());
                wrong_id
            })
            .collect()
    });
    let lab = start("wrong-ids", script, "query_timeout = \"300ms\"").await;
    let (result, elapsed) = check(&lab, "wrong-id.test", Duration::from_secs(4)).await;
    expect_verdict(
        "wrong ids only",
        &result,
        elapsed,
        (Outcome::Fail, Some(ProblemKind::Timeout)),
    );
    let expected = format!(
        "{}: 3 responses with a mismatched ID, no valid answer within 0.3 s",
        lab.dns.address()
    );
    assert!(detail(&result).contains(&expected), "{}", detail(&result));
    assert!(
        !detail(&result).contains("timed out"),
        "{}",
        detail(&result)
    );
}

/// TXT records of one 255-byte string each in the 64 KiB RRset: 240 × 268 bytes = 64 320.
const BIG_RRSET_RECORDS: usize = 240;

fn big_rrset(query: &Query, with_value: bool) -> Vec<u8> {
    let filler = [b'f'; 255];
    let mut records: Vec<Vec<u8>> = (0..BIG_RRSET_RECORDS)
        .map(|_| wire::record(&QUESTION_NAME, TXT, &wire::txt_data(&[&filler])))
        .collect();
    if with_value && let Some(last) = records.last_mut() {
        *last = wire::record(&QUESTION_NAME, TXT, &wire::txt_data(&[VALUE.as_bytes()]));
    }
    wire::response(query, &records)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_dns_a_64_kib_txt_rrset_is_read_over_tcp_and_decided() {
    // dns-change also looks for the value in CNAME and CAA records (BR 3.2.2.4.7): those
    // queries get an empty NOERROR answer; only TXT gets the 64 KiB RRset.
    let script: Script = Arc::new(|query: &Query| {
        if query.record_type != TXT {
            return vec![wire::response(query, &[])];
        }
        vec![big_rrset(query, query.name.contains(".present."))]
    });
    let sample = Query {
        id: 1,
        name: "_dc.x.present.test.".into(),
        record_type: TXT,
        question: [wire::name("_dc.x.present.test."), vec![0, 16, 0, 1]].concat(),
        tcp: true,
    };
    let size = big_rrset(&sample, true).len();
    assert!((64_000..=65_535).contains(&size), "{size} bytes");
    let lab = start("big-rrset", script, "query_timeout = \"2s\"").await;
    let deadline = Duration::from_secs(5);
    let (absent, elapsed) = check(&lab, "absent.test", deadline).await;
    eprintln!(
        "64 KiB RRset without the value: {:?} in {elapsed:?}",
        verdict(&absent)
    );
    assert_eq!(
        verdict(&absent),
        (Outcome::Fail, Some(ProblemKind::Unauthorized)),
        "{}",
        detail(&absent)
    );
    // The node has no cap on an RRset beyond the TCP message size (65 535 bytes, RFC 1035
    // §4.2.2), which already bounds the work: it reads the whole message and finds the value
    // in the last record. Passing is right: the domain holder published the value, and a
    // large RRset is legal DNS.
    let (present, elapsed) = check(&lab, "x.present.test", deadline).await;
    eprintln!(
        "64 KiB RRset with the value last: {:?} in {elapsed:?}",
        verdict(&present)
    );
    assert_eq!(
        verdict(&present),
        (Outcome::Pass, None),
        "{}",
        detail(&present)
    );
    // The evidence carries the RRset as seen (every record), so the signed result is itself
    // about 64 KiB: far inside the 1 MiB result-frame cap.
    let evidence: Vec<(String, usize, usize)> = present
        .evidence
        .dns
        .iter()
        .map(|e| {
            let bytes = e.records.iter().map(String::len).sum();
            (e.record_type.clone(), e.records.len(), bytes)
        })
        .collect();
    eprintln!("64 KiB RRset evidence (type, records, bytes): {evidence:?}");
    assert_eq!(evidence[0].1, BIG_RRSET_RECORDS);
    let txt: Vec<bool> = lab
        .dns
        .log()
        .into_iter()
        .filter(|q| q.record_type == TXT)
        .map(|q| q.tcp)
        .collect();
    assert_eq!(
        txt,
        [false, true, false, true],
        "each truncated UDP answer retried over TCP"
    );
}

/// Links in the hostile CNAME chains.
const CHAIN: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_dns_a_cname_chain_of_100_is_cut_at_the_cap() {
    // `_dc.<zone>` → c1.<zone> → … → c100.<zone>, which holds the value: a pass would mean the
    // node followed past its cap (`dns.max_cname_chain`, default 8).
    let link = |zone: &str, i: usize| format!("c{i}.{zone}");
    let script: Script = Arc::new(move |query: &Query| {
        let zone = if query.name.ends_with("step.test.") {
            "step.test."
        } else {
            "whole.test."
        };
        let index = |name: &str| -> usize {
            name.strip_prefix('c')
                .and_then(|rest| rest.split('.').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        let txt = wire::txt_data(&[VALUE.as_bytes()]);
        if zone == "step.test." {
            // One link per answer: the node must ask for each next name itself.
            let i = index(&query.name);
            let record = if i == CHAIN {
                wire::record(&QUESTION_NAME, TXT, &txt)
            } else {
                wire::record(&QUESTION_NAME, CNAME, &wire::name(&link(zone, i + 1)))
            };
            return vec![wire::response(query, &[record])];
        }
        // The rest of the chain in one answer (4.6 KB from the start: truncated over UDP,
        // whole over TCP); a node that asks again for a later link gets the rest from there.
        let start = index(&query.name);
        if start == CHAIN {
            return vec![wire::response(
                query,
                &[wire::record(&QUESTION_NAME, TXT, &txt)],
            )];
        }
        let mut records = vec![wire::record(
            &QUESTION_NAME,
            CNAME,
            &wire::name(&link(zone, start + 1)),
        )];
        for i in start + 1..CHAIN {
            records.push(wire::record(
                &wire::name(&link(zone, i)),
                CNAME,
                &wire::name(&link(zone, i + 1)),
            ));
        }
        records.push(wire::record(&wire::name(&link(zone, CHAIN)), TXT, &txt));
        vec![wire::response(query, &records)]
    });
    let lab = start("cname-chain", script, "query_timeout = \"1s\"").await;
    let deadline = Duration::from_secs(5);
    for domain in ["step.test", "whole.test"] {
        let (result, elapsed) = check(&lab, domain, deadline).await;
        eprintln!(
            "CNAME chain of {CHAIN} ({domain}): {:?} in {elapsed:?}: {}",
            verdict(&result),
            detail(&result)
        );
        assert_eq!(
            verdict(&result),
            (Outcome::Fail, Some(ProblemKind::Dns)),
            "{domain}: {}",
            detail(&result)
        );
    }
    let asked = |zone: &str| {
        lab.dns
            .log()
            .iter()
            .filter(|q| q.name.ends_with(zone))
            .count()
    };
    eprintln!(
        "queries: step.test {}, whole.test {}",
        asked("step.test."),
        asked("whole.test.")
    );
    // Stepwise, the node stops asking after the cap: the start plus at most 8 links.
    assert!(asked("step.test.") <= 9, "{}", asked("step.test."));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_dns_a_server_that_never_answers_times_out_at_the_deadline() {
    let script: Script = Arc::new(|_: &Query| Vec::new());
    // The query timeout (5 s) is longer than the request's deadline (2 s): the check's own
    // deadline must end the wait, and say so.
    let lab = start("silent", script, "query_timeout = \"5s\"").await;
    let deadline = Duration::from_secs(2);
    let (result, elapsed) = check(&lab, "silent.test", deadline).await;
    expect_verdict(
        "silent server",
        &result,
        elapsed,
        (Outcome::Fail, Some(ProblemKind::Timeout)),
    );
    assert!(
        elapsed >= deadline - Duration::from_millis(300),
        "gave up early: {elapsed:?}"
    );
    assert!(lab.dns.queries() >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_dns_a_truncated_answer_then_a_silent_tcp_server_times_out_per_query() {
    // UDP says "truncated, ask over TCP"; TCP accepts and never answers. The TCP retry lives
    // inside the query's own timeout (300 ms), so two rounds end well before the 4 s deadline.
    let script: Script = Arc::new(|query: &Query| {
        if query.tcp {
            Vec::new()
        } else {
            vec![wire::truncated(query)]
        }
    });
    let lab = start("silent-tcp", script, "query_timeout = \"300ms\"").await;
    let (result, elapsed) = check(&lab, "tcp-silent.test", Duration::from_secs(4)).await;
    expect_verdict(
        "TC then silent TCP",
        &result,
        elapsed,
        (Outcome::Fail, Some(ProblemKind::Timeout)),
    );
    assert!(
        elapsed < Duration::from_millis(2 * 300) + SLACK,
        "took {elapsed:?}"
    );
    assert_eq!(lab.dns.tcp_queries(), 2, "one TCP retry per round");
}

/// Answers with the value somewhere other than an IN TXT record of the question's name in the
/// answer section, as the first label of the domain says.
fn outside_script() -> Script {
    Arc::new(|query: &Query| {
        if query.record_type != TXT {
            return vec![wire::response(query, &[])];
        }
        let txt = wire::txt_data(&[VALUE.as_bytes()]);
        let label = query.name.split('.').nth(1).unwrap_or_default().to_owned();
        let in_answer = |owner: &[u8]| vec![wire::record(owner, TXT, &txt)];
        let message = match label.as_str() {
            "other-owner" => wire::response(query, &in_answer(&wire::name("other.test."))),
            "authority" => wire::message(query, &[], &in_answer(&QUESTION_NAME), &[]),
            "additional" => wire::message(query, &[], &[], &in_answer(&QUESTION_NAME)),
            "chaos" => wire::response(
                query,
                &[wire::record_in_class(&QUESTION_NAME, TXT, 3, &txt)],
            ),
            // The control: the right owner, spelled in another case (names compare
            // case-insensitively), passes.
            _ => wire::response(query, &in_answer(&wire::name(&query.name.to_uppercase()))),
        };
        vec![message]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_dns_the_value_outside_the_answer_to_the_question_does_not_count() {
    // The value is in the message, but not as a TXT record of the name asked about in the
    // answer section: a node that took it would pass a domain that never published it.
    let lab = start("outside", outside_script(), "query_timeout = \"500ms\"").await;
    let deadline = Duration::from_secs(4);
    let cases = [
        (
            "other-owner.test",
            (Outcome::Fail, Some(ProblemKind::Unauthorized)),
        ),
        (
            "authority.test",
            (Outcome::Fail, Some(ProblemKind::Unauthorized)),
        ),
        (
            "additional.test",
            (Outcome::Fail, Some(ProblemKind::Unauthorized)),
        ),
        ("control.test", (Outcome::Pass, None)),
    ];
    for (domain, expected) in cases {
        let (result, elapsed) = check(&lab, domain, deadline).await;
        eprintln!(
            "value outside the answer ({domain}): {:?} in {elapsed:?}: {}",
            verdict(&result),
            detail(&result)
        );
        assert_eq!(verdict(&result), expected, "{domain}: {}", detail(&result));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_dns_a_txt_record_of_another_class_does_not_count() {
    // RFC 1035 §4.1.3/§6.2: an answer to a class IN question answers with IN records; a CHAOS
    // TXT record carrying the value is not the domain's IN TXT record, so the check must fail.
    let lab = start("chaos", outside_script(), "query_timeout = \"500ms\"").await;
    let (result, elapsed) = check(&lab, "chaos.test", Duration::from_secs(4)).await;
    expect_verdict(
        "CHAOS-class TXT",
        &result,
        elapsed,
        (Outcome::Fail, Some(ProblemKind::Unauthorized)),
    );
}

/// A wire name of four labels of binary bytes (255 bytes in all), varied by `i`.
fn binary_name(i: usize) -> Vec<u8> {
    let mut name = Vec::new();
    for _ in 0..3 {
        name.push(63u8);
        name.extend_from_slice(&[0xfe; 63]);
    }
    name.push(61u8);
    name.extend_from_slice(&[0xfe; 60]);
    name.push(u8::try_from(i % 250).unwrap());
    name.push(0);
    name
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_dns_the_largest_evidence_still_fits_one_signed_result() {
    // dns-change without the value asks for TXT, CNAME and CAA at the name; each answer here
    // is a ~64 KiB RRset of binary bytes, which the evidence renders as text (non-UTF-8 TXT
    // and CAA bytes as U+FFFD, three bytes each; binary name bytes as `\DDD`, four). That is
    // the largest evidence a dns-change target can carry (a CAA climb keeps one CNAME per
    // level, so it carries less); it must still come back as one signed, typed
    // result, inside the node's 1 MiB result-frame cap (`frame::DEFAULT_MAX_RESULT_BYTES`).
    let script: Script = Arc::new(|query: &Query| {
        let records: Vec<Vec<u8>> = match query.record_type {
            TXT => (0..BIG_RRSET_RECORDS)
                .map(|_| wire::record(&QUESTION_NAME, TXT, &wire::txt_data(&[&[0xff; 255]])))
                .collect(),
            CNAME => (0..BIG_RRSET_RECORDS)
                .map(|i| wire::record(&QUESTION_NAME, CNAME, &binary_name(i)))
                .collect(),
            CAA => (0..BIG_RRSET_RECORDS)
                .map(|_| {
                    let data = [&[0u8, 3][..], b"xyz", &[0xfd; 250]].concat();
                    wire::record(&QUESTION_NAME, CAA, &data)
                })
                .collect(),
            _ => Vec::new(),
        };
        vec![wire::response(query, &records)]
    });
    let lab = start("evidence", script, "query_timeout = \"2s\"").await;
    let (result, elapsed) = check(&lab, "evidence.test", Duration::from_secs(5)).await;
    let sizes: Vec<(String, usize, usize)> = result
        .evidence
        .dns
        .iter()
        .map(|e| {
            let bytes = e.records.iter().map(String::len).sum();
            (e.record_type.clone(), e.records.len(), bytes)
        })
        .collect();
    let total: usize = sizes.iter().map(|(_, _, bytes)| bytes).sum();
    eprintln!(
        "largest evidence: {:?} in {elapsed:?}; (type, records, bytes) {sizes:?}, {total} bytes \
         of a {} byte frame cap",
        verdict(&result),
        mpic_protocol::frame::DEFAULT_MAX_RESULT_BYTES
    );
    assert_eq!(
        verdict(&result),
        (Outcome::Fail, Some(ProblemKind::Unauthorized)),
        "{}",
        detail(&result)
    );
    assert_eq!(sizes.len(), 3, "{sizes:?}");
    assert!(total < mpic_protocol::frame::DEFAULT_MAX_RESULT_BYTES * 3 / 4);
}
