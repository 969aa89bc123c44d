//! Hostile primaries: a client with valid credentials (its own certificate from the dev CA)
//! that floods one connection with streams, writes garbage frames, stalls mid-frame (small and
//! largest-size frames), and replays a request, while an honest primary on its own connection
//! runs CAA checks for the whole attack. Each case asserts the attacker's typed errors, the
//! honest success rate, and the node's memory growth (`VmRSS`/`VmHWM` from `/proc`), printed
//! with `eprintln!`. The shared set-up is in `hostile_primary/arena.rs`.

mod arena;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mpic_protocol::client::{ClientError, unix_ms, verify};
use mpic_protocol::frame;
use mpic_protocol::{NodeMessage, Outcome, ProtocolErrorKind, Request};
use mpic_tests::node::Memory;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::support::{encode, request_within};
use arena::{
    Arena, Ending, Honest, READ_TIMEOUT, arena, attack_stream, caa_target, check_memory, ending,
    node_diagnostics, tally, tracing_panics, under_attack,
};

/// `quic.max_streams_per_connection` at its default.
const STREAM_CREDIT: usize = 256;

/// The streams of the stream flood: far past `quic.max_streams_per_connection` (256).
const FLOOD_STREAMS: usize = 3000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_primary_a_stream_flood_is_capped_and_shed() {
    let arena = arena(
        "stream-flood",
        "max_in_flight_per_primary = 64\nrequest_read_timeout = \"2s\"",
    )
    .await;
    let before = arena.node.memory().unwrap();
    // Every stream sends all of a request but its last 3 bytes and holds: admitted ones hold a
    // slot until the read timeout, the rest are shed at once. QUIC stream credit (256 open
    // streams) makes the attacker wait for the node instead of piling up streams.
    let good = encode(&request_within(vec![caa_target()], Duration::from_secs(20)));
    let head = Arc::new(good[..good.len() - 3].to_vec());
    // Streams the attacker holds open at once, and the most it ever held: the node's stream
    // credit, not the attacker's 512 tasks, must be what bounds it.
    let open = Arc::new(AtomicUsize::new(0));
    let most_open = Arc::new(AtomicUsize::new(0));
    let attack = async {
        let mut tasks = JoinSet::new();
        let permits = Arc::new(Semaphore::new(512));
        for _ in 0..FLOOD_STREAMS {
            let (connection, head, permits) = (
                arena.attacker.clone(),
                Arc::clone(&head),
                Arc::clone(&permits),
            );
            let (open, most_open) = (Arc::clone(&open), Arc::clone(&most_open));
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let opened = tokio::time::timeout(READ_TIMEOUT, connection.open_bi()).await;
                let Ok(Ok((mut send, mut recv))) = opened else {
                    return Ending::Reset(format!("open: {opened:?}"));
                };
                let now = open.fetch_add(1, Ordering::SeqCst) + 1;
                most_open.fetch_max(now, Ordering::SeqCst);
                let _ = send.write_all(&head).await;
                let end = ending(&mut recv).await;
                open.fetch_sub(1, Ordering::SeqCst);
                end
            });
        }
        let mut endings = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            endings.push(joined.unwrap());
        }
        endings
    };
    let (endings, honest, elapsed) = under_attack(&arena, attack).await;
    let counts = tally("stream flood", &endings);
    let most_open = most_open.load(Ordering::SeqCst);
    eprintln!("stream flood: at most {most_open} attacker streams open at once");
    assert!(
        most_open <= STREAM_CREDIT,
        "{most_open} streams open at once"
    );
    eprintln!("stream flood: {honest}, {elapsed:?}");
    let overloaded = counts.get("overloaded").copied().unwrap_or(0);
    let timed_out = counts.get("bad_frame").copied().unwrap_or(0);
    assert_eq!(overloaded + timed_out, FLOOD_STREAMS, "{counts:?}");
    assert!(
        timed_out >= 64,
        "the 64 admitted streams time out: {counts:?}"
    );
    assert!(overloaded >= FLOOD_STREAMS / 2, "{counts:?}");
    honest.assert_all_passed("stream flood", &arena.node);
    assert_eq!(
        arena
            .node
            .metric("mpic_node_shed_requests_total{scope=\"primary\"}")
            .unwrap(),
        overloaded as f64
    );
    assert!(arena.attacker.close_reason().is_none());
    arena
        .node
        .wait_for_metric("mpic_node_requests_in_flight", 0.0)
        .unwrap();
    check_memory("stream flood", before, arena.node.memory().unwrap());
}

/// A small deterministic generator (xorshift64), so a failing garbage case can be replayed.
struct Garbage(u64);

impl Garbage {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next().to_le_bytes()[0]).collect()
    }
}

/// Garbage streams sent.
const GARBAGE_STREAMS: usize = 600;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_primary_garbage_frames_get_typed_errors_and_the_connection_survives() {
    let arena = arena("garbage", "").await;
    let max = frame::DEFAULT_MAX_REQUEST_BYTES;
    let mut random = Garbage(0x6d70_6963_6e6f_6465);
    // Three shapes in turn: random bytes (a random length prefix), an oversized prefix
    // (u32::MAX) and a truthful prefix over random CBOR-ish bytes; each stream is finished.
    let cases: Vec<(Vec<u8>, ProtocolErrorKind)> = (0..GARBAGE_STREAMS)
        .map(|i| {
            let len = usize::try_from(random.next() % 2000).unwrap() + 5;
            let bytes = match i % 3 {
                0 => random.bytes(len),
                1 => [u32::MAX.to_be_bytes().to_vec(), random.bytes(len)].concat(),
                _ => {
                    let body = random.bytes(len);
                    let prefix = u32::try_from(body.len()).unwrap().to_be_bytes();
                    [prefix.to_vec(), body].concat()
                }
            };
            let prefix = u32::from_be_bytes(bytes[..4].try_into().unwrap());
            let expected = if usize::try_from(prefix).unwrap() > max {
                ProtocolErrorKind::FrameTooLarge
            } else {
                ProtocolErrorKind::BadFrame
            };
            (bytes, expected)
        })
        .collect();
    let before = arena.node.memory().unwrap();
    let attack = async {
        let mut tasks = JoinSet::new();
        let permits = Arc::new(Semaphore::new(64));
        for (bytes, expected) in cases.clone() {
            let (connection, permits) = (arena.attacker.clone(), Arc::clone(&permits));
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                (attack_stream(&connection, &bytes, true).await, expected)
            });
        }
        let mut endings = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            endings.push(joined.unwrap());
        }
        endings
    };
    let (endings, honest, elapsed) = under_attack(&arena, attack).await;
    tally(
        "garbage frames",
        &endings
            .iter()
            .map(|(end, _)| end.clone())
            .collect::<Vec<_>>(),
    );
    eprintln!("garbage frames: {honest}, {elapsed:?}");
    for (end, expected) in &endings {
        assert_eq!(end, &Ending::Error(*expected));
    }
    honest.assert_all_passed("garbage frames", &arena.node);
    // Streams reset mid-frame: each still gets its typed error, and frees its slot at once.
    let good = encode(&request_within(vec![caa_target()], Duration::from_secs(10)));
    for _ in 0..64 {
        let (mut send, mut recv) = arena.attacker.open_bi().await.unwrap();
        send.write_all(&good[..good.len() / 2]).await.unwrap();
        send.reset(0u32.into()).unwrap();
        let end = ending(&mut recv).await;
        assert_eq!(end, Ending::Error(ProtocolErrorKind::BadFrame));
    }
    arena
        .node
        .wait_for_metric("mpic_node_requests_in_flight", 0.0)
        .unwrap();
    // The attacker's connection is still up and still served.
    assert!(arena.attacker.close_reason().is_none());
    assert_eq!(
        attack_stream(&arena.attacker, &good, true).await,
        Ending::Result
    );
    check_memory("garbage frames", before, arena.node.memory().unwrap());
}

/// The attacker's per-primary limit in the stall case; each wave fills it exactly.
const STALL_SLOTS: usize = 32;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_primary_streams_stalled_mid_frame_are_cut_at_the_read_timeout() {
    let read_timeout = Duration::from_secs(1);
    let arena = arena(
        "stall",
        &format!("max_in_flight_per_primary = {STALL_SLOTS}\nrequest_read_timeout = \"1s\""),
    )
    .await;
    let good = encode(&request_within(vec![caa_target()], Duration::from_secs(30)));
    let head = good[..good.len() / 2].to_vec();
    let before = arena.node.memory().unwrap();
    let attack = async {
        let mut report = Vec::new();
        for wave in 0..3 {
            // Fill every slot with a half frame and hold the streams open.
            let mut held = Vec::new();
            for _ in 0..STALL_SLOTS {
                let (mut send, recv) = arena.attacker.open_bi().await.unwrap();
                send.write_all(&head).await.unwrap();
                held.push((send, recv, Instant::now()));
            }
            // Let the node admit them all (admission runs on the node's own tasks), then one
            // more is shed: the slots are really held.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let extra = attack_stream(&arena.attacker, &head, false).await;
            assert_eq!(
                extra,
                Ending::Error(ProtocolErrorKind::Overloaded),
                "wave {wave}"
            );
            let mut waits = Vec::new();
            for (send, mut recv, opened) in held {
                let end = ending(&mut recv).await;
                assert_eq!(
                    end,
                    Ending::Error(ProtocolErrorKind::BadFrame),
                    "wave {wave}"
                );
                waits.push(opened.elapsed());
                drop(send);
            }
            let longest = waits.iter().max().copied().unwrap_or_default();
            let shortest = waits.iter().min().copied().unwrap_or_default();
            eprintln!(
                "stall wave {wave}: {STALL_SLOTS} streams cut after {shortest:?}..{longest:?}"
            );
            assert!(shortest >= read_timeout - Duration::from_millis(100));
            assert!(longest < read_timeout + Duration::from_millis(1500));
            // The slots are free again: a complete request from the attacker is served. The
            // node releases a slot once its error frame is acknowledged (a few ms here; at most
            // its 2 s finish timeout), so allow that long.
            let good = encode(&request_within(vec![caa_target()], Duration::from_secs(10)));
            let cut = Instant::now();
            loop {
                match attack_stream(&arena.attacker, &good, true).await {
                    Ending::Result => break,
                    Ending::Error(ProtocolErrorKind::Overloaded)
                        if cut.elapsed() < Duration::from_millis(2500) =>
                    {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    other => panic!("wave {wave}: slots not freed: {other:?}"),
                }
            }
            eprintln!(
                "stall wave {wave}: slots free {:?} after the cut",
                cut.elapsed()
            );
            report.push(longest);
            // That request's own slot is released once its result is acknowledged; give it
            // time, so the next wave finds all its slots free.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        report
    };
    let (_, honest, elapsed) = under_attack(&arena, attack).await;
    eprintln!("stall: {honest}, {elapsed:?}");
    honest.assert_all_passed("stall", &arena.node);
    arena
        .node
        .wait_for_metric("mpic_node_requests_in_flight", 0.0)
        .unwrap();
    check_memory("stall", before, arena.node.memory().unwrap());
}

/// Copies of one request the attacker replays.
const REPLAYS: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_primary_a_replayed_request_is_answered_afresh_and_old_results_fail_the_nonce_check()
 {
    let arena = arena("replay", "").await;
    let request = request_within(vec![caa_target()], Duration::from_secs(15));
    let sent_unix_ms = unix_ms().unwrap();
    let bytes = Arc::new(encode(&request));
    let before = arena.node.memory().unwrap();
    let attack = async {
        let mut tasks = JoinSet::new();
        let permits = Arc::new(Semaphore::new(32));
        for _ in 0..REPLAYS {
            let (connection, bytes, permits) = (
                arena.attacker.clone(),
                Arc::clone(&bytes),
                Arc::clone(&permits),
            );
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let (mut send, mut recv) = connection.open_bi().await.unwrap();
                send.write_all(&bytes).await.unwrap();
                send.finish().unwrap();
                let body =
                    tokio::time::timeout(READ_TIMEOUT, frame::io::read_frame(&mut recv, 1 << 20))
                        .await
                        .unwrap()
                        .unwrap()
                        .unwrap();
                match frame::decode_body::<NodeMessage>(&body).unwrap() {
                    NodeMessage::Result(signed) => signed,
                    other => panic!("replay answered {other:?}"),
                }
            });
        }
        let mut results = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            results.push(joined.unwrap());
        }
        results
    };
    let (results, honest, elapsed) = under_attack(&arena, attack).await;
    eprintln!(
        "replay: {} signed results for {REPLAYS} copies, {honest}, {elapsed:?}",
        results.len()
    );
    assert_eq!(results.len(), REPLAYS);
    honest.assert_all_passed("replay", &arena.node);
    let window = || verify::Window {
        sent_unix_ms,
        now_unix_ms: unix_ms().unwrap(),
        skew: Duration::from_secs(5),
    };
    let endpoint = arena.node.endpoint();
    // Every copy is checked afresh and signed: each verifies as an answer to the request sent,
    // echoing its id and nonce (the check is idempotent, so answering a replay is harmless).
    for signed in &results {
        let payload = mpic_protocol::client::verify_result(
            &endpoint,
            &request,
            signed,
            window(),
            &mut [false],
        )
        .unwrap();
        assert_eq!(payload.request_id, request.request_id);
        assert_eq!(payload.nonce, request.nonce);
        assert_eq!(payload.outcome, Outcome::Pass);
    }
    // Replaying a *result* is what must fail: captured for A, it does not answer B.
    let mut second: Request = request.clone();
    second.nonce = vec![0xb; 32];
    let error = mpic_protocol::client::verify_result(
        &endpoint,
        &second,
        &results[0],
        window(),
        &mut [false],
    )
    .unwrap_err();
    assert!(
        matches!(error, ClientError::Mismatch { field: "nonce", .. }),
        "{error}"
    );
    check_memory("replay", before, arena.node.memory().unwrap());
}

/// Streams of the large-frame stall: the per-primary limit (and the stream credit) at default.
const LARGE_STALLS: usize = 256;

/// A request frame of the largest allowed size (64 KiB) with its last byte missing.
fn almost_a_frame() -> Arc<Vec<u8>> {
    let max = frame::DEFAULT_MAX_REQUEST_BYTES;
    let mut almost = u32::try_from(max).unwrap().to_be_bytes().to_vec();
    almost.resize(4 + max - 1, 0xa5);
    Arc::new(almost)
}

/// One round of the large-frame stall with the honest load alongside: `LARGE_STALLS` streams
/// each send `almost` and hold until the node cuts them. Asserts every stream was cut with
/// `bad_frame`; returns what the honest primary saw and the node's memory while the frames
/// were held.
async fn large_stall_round(arena: &Arena, almost: &Arc<Vec<u8>>, case: &str) -> (Honest, Memory) {
    let held_memory = Arc::new(std::sync::Mutex::new(None));
    let attack = async {
        let mut tasks = JoinSet::new();
        for _ in 0..LARGE_STALLS {
            let (connection, almost) = (arena.attacker.clone(), Arc::clone(almost));
            tasks.spawn(async move {
                let (mut send, mut recv) = connection.open_bi().await.unwrap();
                let written = tokio::time::timeout(READ_TIMEOUT, send.write_all(&almost)).await;
                let end = ending(&mut recv).await;
                drop(send);
                (matches!(written, Ok(Ok(()))), end)
            });
        }
        // Measure while the slots are held (the frames are in well before the timeout).
        tokio::time::sleep(Duration::from_millis(1200)).await;
        *held_memory.lock().unwrap() = Some(arena.node.memory().unwrap());
        let mut endings = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            endings.push(joined.unwrap());
        }
        endings
    };
    let (endings, honest, elapsed) = under_attack(arena, attack).await;
    let written = endings.iter().filter(|(written, _)| *written).count();
    let counts = tally(
        case,
        &endings
            .iter()
            .map(|(_, end)| end.clone())
            .collect::<Vec<_>>(),
    );
    eprintln!("{case}: {written}/{LARGE_STALLS} frames fully written, {honest}, {elapsed:?}");
    assert_eq!(counts.get("bad_frame"), Some(&LARGE_STALLS), "{counts:?}");
    let held = held_memory.lock().unwrap().unwrap();
    (honest, held)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_primary_large_frames_stalled_one_byte_short_hold_bounded_memory() {
    // The worst a single primary can make the node buffer: every slot it has holds a frame of
    // the largest allowed size (`limits.max_request_bytes`, 64 KiB) but one byte, until the read
    // timeout. By design that is 256 × 64 KiB = 16 MiB of request bytes, plus QUIC buffers.
    // Two rounds: the allocator returns freed pages lazily, so RSS after a round is noisy; but
    // after the second round the node must be no larger than while the first held its frames
    // (plus a margin): a leak of the held buffers would add another ~16 MiB.
    let arena = arena("large-stall", "request_read_timeout = \"2s\"").await;
    let almost = almost_a_frame();
    let start = arena.node.memory().unwrap();
    let mut rounds = Vec::new();
    for round in 0..2 {
        let case = format!("large stalled frames, round {round}");
        let before = arena.node.memory().unwrap();
        let (honest, held) = large_stall_round(&arena, &almost, &case).await;
        honest.assert_all_passed(&case, &arena.node);
        check_memory(&format!("{case} (held)"), before, held);
        let after = arena.node.memory().unwrap();
        check_memory(&format!("{case} (after)"), before, after);
        rounds.push((held, after));
    }
    let second = rounds[1].1.rss_bytes.saturating_sub(rounds[0].0.rss_bytes);
    eprintln!(
        "large stalled frames: start {start}; after round 1, {:.1} MiB over round 0 held",
        second as f64 / 1048576.0
    );
    assert!(
        second < 8 * 1024 * 1024,
        "after round 1, {second} bytes over round 0 held"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_primary_no_request_is_lost_to_a_tracing_panic() {
    // Regression test for the tracing panic (Span::enter() held across .await, fixed by
    // instrumenting the futures). A scheduling race, so it reproduced only sometimes: the
    // two-round large-frame test hit it in 8 of about 25 runs while another build loaded this
    // 2-core machine, then in 2 of 12 fresh nodes. Fresh nodes, two rounds each, for 20 s:
    // every honest request must get its signed result, and the node must not panic at all.
    let almost = almost_a_frame();
    let started = Instant::now();
    let mut attempt = 0;
    while started.elapsed() < Duration::from_secs(20) {
        attempt += 1;
        let arena = arena("tracing-panic", "request_read_timeout = \"2s\"").await;
        let (mut sent, mut passed) = (0, 0);
        for round in 0..2 {
            let case = format!("tracing panic, node {attempt}, round {round}");
            let (honest, _) = large_stall_round(&arena, &almost, &case).await;
            sent += honest.sent;
            passed += honest.passed;
        }
        let panics = tracing_panics(&arena.node);
        eprintln!(
            "tracing panic, node {attempt}: {passed}/{sent} honest requests passed, {panics} panics"
        );
        assert!(
            panics == 0 && passed == sent,
            "node {attempt}: {passed}/{sent} honest requests passed\n{}",
            node_diagnostics(&arena.node)
        );
    }
}
