use std::net::Ipv4Addr;

use hickory_proto::rr::RData;
use hickory_proto::rr::rdata::{A, TXT};

use hickory_proto::op::ResponseCode;

use super::*;

fn limits(max_entries: usize) -> CacheLimits {
    CacheLimits {
        max_entries,
        max_bytes: 1 << 20,
        max_answer_ttl: Duration::from_secs(60),
        max_delegation_ttl: Duration::from_secs(3600),
    }
}

fn name(text: &str) -> Name {
    Name::from_ascii(text).unwrap()
}

fn a_record(owner: &str) -> Cached {
    Arc::new(Answer::positive(
        vec![Record::from_rdata(
            name(owner),
            300,
            RData::A(A::new(192, 0, 2, 1)),
        )],
        Vec::new(),
    ))
}

#[tokio::test(start_paused = true)]
async fn answers_expire_at_the_capped_ttl() {
    let cache = Cache::new(limits(10));
    cache.store_answer(
        &name("www.example.com."),
        RecordType::A,
        a_record("www.example.com."),
        Duration::from_secs(300),
    );
    // Case-insensitive keys (RFC 4343).
    assert_eq!(
        cache.answer(&name("WWW.example.COM."), RecordType::A),
        Some(a_record("www.example.com."))
    );
    assert_eq!(
        cache.answer(&name("www.example.com."), RecordType::AAAA),
        None
    );
    tokio::time::advance(Duration::from_secs(59)).await;
    assert!(
        cache
            .answer(&name("www.example.com."), RecordType::A)
            .is_some()
    );
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(
        cache.answer(&name("www.example.com."), RecordType::A),
        None,
        "capped at 60 s, not 300 s"
    );
}

#[tokio::test(start_paused = true)]
async fn negative_answers_are_cached_and_zero_ttl_is_not() {
    let cache = Cache::new(limits(10));
    cache.store_answer(
        &name("nx.example.com."),
        RecordType::TXT,
        Arc::new(Answer::negative(ResponseCode::NXDomain, Vec::new())),
        Duration::from_secs(30),
    );
    assert_eq!(
        cache.answer(&name("nx.example.com."), RecordType::TXT),
        Some(Arc::new(Answer::negative(
            ResponseCode::NXDomain,
            Vec::new()
        )))
    );
    cache.store_answer(
        &name("zero.example.com."),
        RecordType::A,
        a_record("zero.example.com."),
        Duration::ZERO,
    );
    assert_eq!(
        cache.answer(&name("zero.example.com."), RecordType::A),
        None
    );
}

#[tokio::test(start_paused = true)]
async fn entry_limit_evicts_the_oldest_and_replacements_do_not_confuse_it() {
    let cache = Cache::new(limits(3));
    for i in 0..3 {
        let owner = format!("n{i}.example.");
        cache.store_answer(
            &name(&owner),
            RecordType::A,
            a_record(&owner),
            Duration::from_secs(30),
        );
    }
    // Re-store n0: it is now the newest.
    cache.store_answer(
        &name("n0.example."),
        RecordType::A,
        a_record("n0.example."),
        Duration::from_secs(30),
    );
    cache.store_answer(
        &name("n3.example."),
        RecordType::A,
        a_record("n3.example."),
        Duration::from_secs(30),
    );
    assert_eq!(cache.size().0, 3);
    assert!(
        cache.answer(&name("n1.example."), RecordType::A).is_none(),
        "n1 was the oldest"
    );
    assert!(cache.answer(&name("n0.example."), RecordType::A).is_some());
    assert!(cache.answer(&name("n2.example."), RecordType::A).is_some());
    assert!(cache.answer(&name("n3.example."), RecordType::A).is_some());
}

#[tokio::test(start_paused = true)]
async fn byte_limit_holds_with_big_txt_sets() {
    let cache = Cache::new(CacheLimits {
        max_bytes: 10_000,
        ..limits(1000)
    });
    let big = vec!["x".repeat(255); 10];
    for i in 0..20 {
        let owner = name(&format!("t{i}.example."));
        let records = Arc::new(Answer::positive(
            vec![Record::from_rdata(
                owner.clone(),
                60,
                RData::TXT(TXT::new(big.clone())),
            )],
            Vec::new(),
        ));
        cache.store_answer(&owner, RecordType::TXT, records, Duration::from_secs(30));
    }
    let (entries, bytes) = cache.size();
    assert!(bytes <= 10_000, "{bytes}");
    assert!((1..20).contains(&entries), "{entries}");
    assert!(
        cache
            .answer(&name("t19.example."), RecordType::TXT)
            .is_some(),
        "newest kept"
    );
}

#[tokio::test(start_paused = true)]
async fn closest_delegation_walks_up_the_ancestors() {
    let cache = Cache::new(limits(10));
    let delegation = |ns: &str| Delegation {
        nameservers: vec![name(ns)],
        addresses: vec![(name(ns), Ipv4Addr::LOCALHOST.into())],
    };
    cache.store_delegation(
        &name("com."),
        delegation("a.gtld.test."),
        Duration::from_secs(7200),
    );
    cache.store_delegation(
        &name("example.com."),
        delegation("ns1.example.com."),
        Duration::from_secs(60),
    );
    let (zone, found) = cache
        .closest_delegation(&name("www.sub.Example.com."))
        .unwrap();
    assert_eq!(zone, name("example.com."));
    assert_eq!(found.nameservers, vec![name("ns1.example.com.")]);
    assert_eq!(cache.closest_delegation(&name("other.net.")), None);
    tokio::time::advance(Duration::from_secs(61)).await;
    assert_eq!(
        cache
            .closest_delegation(&name("www.example.com."))
            .unwrap()
            .0,
        name("com.")
    );
}

#[tokio::test(start_paused = true)]
async fn many_replacements_keep_the_order_queue_bounded() {
    let cache = Cache::new(limits(100));
    for _ in 0..10_000 {
        cache.store_answer(
            &name("same.example."),
            RecordType::A,
            a_record("same.example."),
            Duration::from_secs(30),
        );
    }
    // One live entry: the queue is compacted past 2 x live + 64 slots.
    assert!(cache.lock().order.len() <= 2 + 64 + 1);
}

#[test]
fn a_cache_that_fills_up_never_grows_its_answer_table() {
    let cache = Cache::new(CacheLimits {
        max_bytes: 1 << 30,
        ..limits(5_000)
    });
    let reserved = cache.lock().answers.capacity();
    assert!(reserved > 10_000, "{reserved}");
    for i in 0..50_000 {
        let owner = format!("n{i}.example.");
        cache.store_answer(
            &name(&owner),
            RecordType::A,
            a_record(&owner),
            Duration::from_secs(60),
        );
    }
    let inner = cache.lock();
    assert_eq!(inner.answers.len(), 5_000);
    // Tombstones cleared in place lower `capacity()` a little; a new table would double it.
    let now = inner.answers.capacity();
    assert!(now <= reserved, "the table grew: {reserved} → {now}");
    drop(inner);

    // The byte limit bounds the room reserved too: 64 entries' worth, not a million.
    let small = Cache::new(CacheLimits {
        max_bytes: 64 * ENTRY_OVERHEAD,
        ..limits(1_000_000)
    });
    let room = small.lock().answers.capacity();
    assert!((129..1_000).contains(&room), "{room}");
    // And the entry cap: a huge limit reserves at most MAX_RESERVED_ENTRIES.
    let huge = Cache::new(CacheLimits {
        max_bytes: usize::MAX,
        ..limits(10_000_000)
    });
    let room = huge.lock().answers.capacity();
    assert!(
        (2 * MAX_RESERVED_ENTRIES..4 * MAX_RESERVED_ENTRIES).contains(&room),
        "{room}"
    );
}
