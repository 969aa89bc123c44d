//! The server table's pure parts (RTT, backoff, the token bucket, ranking) and its bounds.

use std::net::{IpAddr, Ipv6Addr};

use rand::SeedableRng as _;

use super::*;

fn addr(last: u8) -> SocketAddr {
    SocketAddr::new(IpAddr::from([192, 0, 2, last]), 53)
}

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

#[test]
fn backoff_doubles_from_one_second_up_to_a_minute() {
    let cases = [(1, 1), (2, 2), (3, 4), (6, 32), (7, 60), (40, 60)];
    for (failures, seconds) in cases {
        assert_eq!(
            backoff(failures),
            Duration::from_secs(seconds),
            "{failures}"
        );
    }
}

#[test]
fn rtt_is_smoothed_as_rfc_6298_says_and_doubled_by_a_timeout() {
    let now = Instant::now();
    let mut health = Health::new(now);
    assert_eq!(health.rtt(), UNKNOWN_RTT);
    health.record(Outcome::Answered(ms(80)), now);
    assert_eq!((health.srtt, health.rttvar), (Some(ms(80)), ms(40)));
    health.record(Outcome::Answered(ms(160)), now);
    // RTTVAR = 3/4 * 40 + 1/4 * |80 - 160| = 50; SRTT = 7/8 * 80 + 1/8 * 160 = 90.
    assert_eq!((health.srtt, health.rttvar), (Some(ms(90)), ms(50)));
    health.record(Outcome::Timeout, now);
    assert_eq!(health.srtt, Some(ms(180)));
    assert_eq!(health.failures, 1);
    assert_eq!(health.backoff_until, Some(now + Duration::from_secs(1)));
    assert!(health.backed_off(now));
    assert!(!health.backed_off(now + Duration::from_secs(1)));
    health.record(Outcome::Refused, now);
    assert_eq!(health.backoff_until, Some(now + Duration::from_secs(2)));
    // An answer ends the backoff and the run of failures.
    health.record(Outcome::Answered(ms(10)), now);
    assert_eq!((health.failures, health.backoff_until), (0, None));
    health.record(Outcome::Lame, now);
    assert!(health.backed_off(now + LAME_TTL - ms(1)));
    assert!(!health.backed_off(now + LAME_TTL));
}

#[test]
fn the_bucket_lets_a_tenth_of_a_second_through_then_spaces_queries() {
    let now = Instant::now();
    let far = now + Duration::from_secs(60);
    let mut health = Health::new(now);
    // 100 q/s: a burst of 10 at once, then one every 10 ms.
    let slots: Vec<Instant> = (0..12)
        .map(|_| health.reserve(100, now, far).unwrap())
        .collect();
    assert!(slots[..10].iter().all(|slot| *slot == now), "{slots:?}");
    assert_eq!(slots[10], now + ms(10));
    assert_eq!(slots[11], now + ms(20));
    // A deadline before the next slot: refused, and nothing reserved.
    assert_eq!(health.reserve(100, now, now + ms(29)), None);
    assert_eq!(health.reserve(100, now, now + ms(30)), Some(now + ms(30)));
}

#[test]
fn no_second_ever_sees_more_than_the_rate_plus_its_burst() {
    let start = Instant::now();
    let far = start + Duration::from_secs(600);
    let mut health = Health::new(start);
    // Demand far above the rate, arriving every millisecond for 5 s.
    let mut sends = Vec::new();
    for tick in 0..5000 {
        let now = start + ms(tick);
        let reserved = health.reserve(40, now, far).unwrap();
        sends.push(reserved);
    }
    sends.sort();
    let busiest = sends
        .iter()
        .enumerate()
        .map(|(i, at)| {
            sends[i..]
                .iter()
                .take_while(|later| later.duration_since(*at) < Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap();
    // 40 q/s with a burst of 4: the burst, then one every 25 ms for the rest of the second.
    assert_eq!(busiest, 43);
}

#[test]
fn ranking_puts_backed_off_and_lame_servers_last_and_prefers_the_fast() {
    let now = Instant::now();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut fast = Health::new(now);
    fast.record(Outcome::Answered(ms(5)), now);
    let mut slow = Health::new(now);
    slow.record(Outcome::Answered(ms(900)), now);
    let mut silent = Health::new(now);
    silent.record(Outcome::Timeout, now);
    let mut lame = Health::new(now);
    lame.record(Outcome::Lame, now);
    let mut fast_first = 0;
    for _ in 0..1000 {
        let order = rank(
            vec![
                (addr(1), silent.clone()),
                (addr(2), slow.clone()),
                (addr(3), fast.clone()),
                (addr(4), lame.clone()),
            ],
            now,
            &mut rng,
        );
        assert_eq!(order.len(), 4);
        assert_eq!(
            order[2..],
            [addr(1), addr(4)],
            "backed off soonest-back first"
        );
        fast_first += usize::from(order[0] == addr(3));
    }
    // Exploration: about one lookup in 40 starts with the slow one (1 in 20, half of them).
    assert!((940..1000).contains(&fast_first), "{fast_first}");
}

#[test]
fn unknown_servers_share_the_load() {
    let now = Instant::now();
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let mut first = [0_usize; 2];
    for _ in 0..1000 {
        let order = rank(
            vec![(addr(1), Health::new(now)), (addr(2), Health::new(now))],
            now,
            &mut rng,
        );
        first[usize::from(order[0] == addr(2))] += 1;
    }
    assert!(
        first.iter().all(|count| (400..600).contains(count)),
        "{first:?}"
    );
}

// Test (4) of issue 19: 100,000 distinct server addresses leave the table within its bound.
#[test]
fn the_table_stays_bounded_under_100k_distinct_addresses() {
    let servers = Servers::new(ServerLimits {
        max_servers: 1000,
        ..ServerLimits::default()
    });
    for index in 0..100_000_u128 {
        let server = SocketAddr::new(
            IpAddr::V6(Ipv6Addr::from(0x2001_0db8_u128 << 96 | index)),
            53,
        );
        servers.record(server, Outcome::Timeout);
        assert!(servers.len() <= 1000, "{} at {index}", servers.len());
    }
    // The most recent survive.
    let last = SocketAddr::new(
        IpAddr::V6(Ipv6Addr::from(0x2001_0db8_u128 << 96 | 99_999)),
        53,
    );
    assert!(servers.report().iter().any(|report| report.server == last));
}

#[tokio::test]
async fn a_full_in_flight_cap_fails_by_name_at_the_deadline() {
    let servers = Servers::new(ServerLimits {
        max_in_flight: 1,
        ..ServerLimits::default()
    });
    let soon = Instant::now() + ms(20);
    let held = servers.admit(addr(1), soon).await.unwrap();
    assert!(!held.queued);
    assert_eq!(
        servers.admit(addr(1), soon).await.unwrap_err(),
        BudgetLimit::InFlight
    );
    assert_eq!(servers.report()[0].in_flight, 1);
    drop(held);
    let next = servers
        .admit(addr(1), Instant::now() + ms(20))
        .await
        .unwrap();
    assert!(!next.queued);
}

#[tokio::test]
async fn a_rate_that_cannot_be_met_in_time_fails_by_name() {
    let servers = Servers::new(ServerLimits {
        max_rate: 1,
        ..ServerLimits::default()
    });
    let soon = Instant::now() + ms(100);
    drop(servers.admit(addr(1), soon).await.unwrap());
    assert_eq!(
        servers.admit(addr(1), soon).await.unwrap_err(),
        BudgetLimit::Rate
    );
}

#[tokio::test]
async fn the_live_table_lists_the_busiest_servers_and_counts_the_rest() {
    let servers = Servers::new(ServerLimits::default());
    let far = Instant::now() + Duration::from_secs(5);
    for (last, queries) in [(1, 2), (2, 5), (3, 1), (4, 3), (5, 4)] {
        for _ in 0..queries {
            drop(servers.admit(addr(last), far).await.unwrap());
        }
    }
    servers.record(addr(3), Outcome::Timeout);
    let table = servers.live(3);
    assert_eq!((table.total, table.truncated), (5, 2));
    let rows: Vec<(SocketAddr, u64)> = table
        .servers
        .iter()
        .map(|row| (row.address, row.queries))
        .collect();
    assert_eq!(rows, [(addr(2), 5), (addr(5), 4), (addr(4), 3)]);
    let all = servers.live(MAX_LIVE_ROWS);
    let silent = all
        .servers
        .iter()
        .find(|row| row.address == addr(3))
        .unwrap();
    assert!(silent.backed_off && silent.backoff_until_unix_ms.is_some());
    assert_eq!((silent.failures, silent.srtt_ms), (1, Some(752)));
}

#[test]
fn a_server_backed_off_after_timeouts_is_skipped_then_probed_once() {
    let start = Instant::now();
    let hold = ms(200);
    let mut health = Health::new(start);
    assert_eq!(health.gate(start, hold), Gate::Ask, "never failed");
    health.record(Outcome::Refused, start);
    assert_eq!(
        health.gate(start, hold),
        Gate::Ask,
        "REFUSED answers at once"
    );
    health.record(Outcome::Timeout, start);
    // Two failures in a row: backed off for 2 s.
    assert_eq!(
        health.gate(start + ms(500), hold),
        Gate::Skip {
            failures: 2,
            probe_in: ms(1500)
        }
    );
    let expired = start + ms(2000);
    assert_eq!(health.gate(expired, hold), Gate::Probe);
    assert_eq!(
        health.gate(expired + ms(50), hold),
        Gate::Skip {
            failures: 2,
            probe_in: ms(150)
        },
        "one probe at a time"
    );
    assert_eq!(
        health.gate(expired + ms(250), hold),
        Gate::Probe,
        "a probe never recorded stops holding"
    );
    health.record(Outcome::Timeout, expired + ms(300));
    assert!(matches!(
        health.gate(expired + ms(400), hold),
        Gate::Skip { failures: 3, .. }
    ));
    health.record(Outcome::Answered(ms(5)), expired + ms(4400));
    assert_eq!(health.gate(expired + ms(4400), hold), Gate::Ask);
}
