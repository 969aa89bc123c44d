//! The running node's per-server DNS state at `/dns-servers.json` on the metrics listener: after
//! a small load, the healthy upstream is listed with its queries and the silent one backed off.

use std::net::SocketAddr;

use mpic_protocol::{CaaCheck, Check, Outcome, Target};
use mpic_tests::dns_server::ZoneText;
use mpic_tests::{NodeProcess, node::http_get, node::primary};

use crate::support::{Lab, request};

const ZONE: &str = "@ 3600 IN SOA ns.invalid. hostmaster.invalid. 1 7200 3600 1209600 60\n\
                    @ IN NS ns.invalid.\n@ IN CAA 0 issue \"ca.example\"\n";

const ROOT: &str = "@ 3600 IN SOA a.root.test. h.test. 1 7200 3600 1209600 60\n\
                    @ 3600 IN NS a.root.test.\n";

fn row(table: &serde_json::Value, server: SocketAddr) -> Option<serde_json::Value> {
    table["servers"]
        .as_array()?
        .iter()
        .find(|row| row["address"] == server.to_string())
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_node_serves_its_dns_server_table() {
    // The root too: the node's start-up probe asks `. NS`, which must not be REFUSED.
    let zone = [
        ZoneText {
            origin: ".",
            text: ROOT,
        },
        ZoneText {
            origin: "caa.test.",
            text: ZONE,
        },
    ];
    let (healthy, silent, options) = super::healthy_and_silent("live-dns", &zone).await;
    let lab = Lab::new();
    let node = NodeProcess::start(lab.dir.path(), &lab.credentials, &options).unwrap();
    let primary = primary(&lab.credentials, &[&node]).unwrap();
    let table = || -> serde_json::Value {
        serde_json::from_str(&http_get(node.metrics, "/dns-servers.json").unwrap()).unwrap()
    };
    // Both upstreams start unknown and are chosen among at random: check names one by one
    // until the silent one has been tried and backed off (bounded).
    let mut checks = 0;
    while checks < 30 {
        checks += 1;
        let target = Target {
            identifier: format!("n{checks}.caa.test"),
            check: Check::Caa(CaaCheck {
                issuer_domains: vec!["ca.example".into()],
                ..CaaCheck::default()
            }),
        };
        let results = primary.query(0, &request(vec![target])).await.unwrap();
        assert_eq!(
            results[0].outcome,
            Outcome::Pass,
            "{:?}",
            results[0].problem
        );
        if row(&table(), silent.address()).is_some_and(|row| row["backed_off"] == true) {
            break;
        }
    }
    let table = table();
    assert_eq!(table["total"], 2, "{table}");
    assert_eq!(table["truncated"], 0, "{table}");
    let healthy_row = row(&table, healthy.address()).unwrap();
    assert!(
        healthy_row["queries"].as_u64().unwrap() >= 1,
        "{healthy_row}"
    );
    assert!(healthy_row["srtt_ms"].is_u64(), "{healthy_row}");
    assert_eq!(healthy_row["backed_off"], false, "{healthy_row}");
    let silent_row = row(&table, silent.address()).unwrap();
    assert_eq!(
        silent_row["backed_off"], true,
        "{silent_row} after {checks} checks"
    );
    assert!(
        silent_row["failures"].as_u64().unwrap() >= 1,
        "{silent_row}"
    );
    assert!(silent_row["backoff_until_unix_ms"].is_u64(), "{silent_row}");
    assert_eq!(
        silent_row["queries"].as_u64().unwrap(),
        silent.query_count(),
        "{silent_row}"
    );
    assert!(silent.query_count() >= 1);
}
