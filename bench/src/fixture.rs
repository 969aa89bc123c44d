//! The loopback fixtures of a load run — the authoritative DNS server with the generated zone,
//! the HTTP server answering http-01 and the TLS-ALPN server answering tls-alpn-01 for every
//! name — on one thread of their own, so their CPU can be told
//! apart from the node's.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use mpic_tests::dns_server::{Behaviour, DnsServer, Rule, ZoneText};
use mpic_tests::http_server::{HttpServer, Route};
use mpic_tests::tls_alpn_server::{TlsAlpnServer, TlsBehaviour};

use mpic_node::checks::tls_alpn::certificate::expected_digest;

use crate::workload::{KEY_AUTHORIZATION, ORIGIN, TLD_ZONE, TOKEN};

/// Running fixtures; stopped when dropped.
pub(crate) struct Fixture {
    /// The DNS server's address (UDP and TCP).
    pub(crate) dns: SocketAddr,
    /// The HTTP server's address.
    pub(crate) http: SocketAddr,
    /// The TLS-ALPN server's address (`acme-tls/1`, a correct certificate for any SNI name).
    pub(crate) tls: SocketAddr,
    /// `/proc/<pid>/task/<tid>/stat` of the fixture thread.
    pub(crate) stat_path: String,
    server: Arc<DnsServer>,
    http_server: Arc<HttpServer>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Fixture {
    /// Queries the DNS fixture has received.
    pub(crate) fn dns_queries(&self) -> u64 {
        self.server.query_count()
    }

    /// Makes the DNS fixture answer every query with `behaviour` (`None`: from the zones again).
    pub(crate) fn set_dns_behaviour(&self, behaviour: Option<Behaviour>) {
        let rules = behaviour.map(|behaviour| Rule {
            suffix: ".".into(),
            record_type: None,
            behaviour,
        });
        self.server.set_rules(rules.into_iter().collect());
    }

    /// Makes the HTTP fixture reset every connection from loopback (`false`: serve again).
    pub(crate) fn set_http_resets(&self, reset: bool) {
        let loopback = IpAddr::from([127, 0, 0, 1]);
        if reset {
            self.http_server.refuse_from(loopback);
        } else {
            self.http_server.serve_again(loopback);
        }
    }

    /// Starts the fixtures with `zone` text; every DNS answer waits `dns_delay` when set (to
    /// keep validations in flight for memory measurements).
    pub(crate) fn start(zone: String, dns_delay: Option<Duration>) -> anyhow::Result<Self> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("bench-fixture".into())
            .spawn(move || {
                let stat = std::fs::read_link("/proc/thread-self")
                    .map(|path| format!("/proc/{}/stat", path.to_string_lossy()))
                    .unwrap_or_default();
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = ready_tx.send(Err(anyhow::anyhow!("fixture runtime: {error}")));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let started = async {
                        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
                        // The TLD too, so CAA climbs get a (cacheable) empty answer at `test.`
                        // as they would at a real TLD, instead of REFUSED every time.
                        let server = DnsServer::start(
                            loopback,
                            &[
                                ZoneText {
                                    origin: ORIGIN,
                                    text: &zone,
                                },
                                ZoneText {
                                    origin: "test.",
                                    text: TLD_ZONE,
                                },
                            ],
                        )
                        .await?;
                        if let Some(delay) = dns_delay {
                            server.set_rules(vec![Rule {
                                suffix: ".".into(),
                                record_type: None,
                                behaviour: Behaviour::Delay(delay),
                            }]);
                        }
                        let http = HttpServer::start(loopback).await?;
                        http.route(
                            &format!("/.well-known/acme-challenge/{TOKEN}"),
                            Route::ok(KEY_AUTHORIZATION),
                        );
                        let tls = TlsAlpnServer::start(
                            loopback,
                            TlsBehaviour::PerName {
                                digest: expected_digest(KEY_AUTHORIZATION),
                                alpn: vec![b"acme-tls/1".to_vec()],
                            },
                        )
                        .await?;
                        anyhow::Ok((Arc::new(server), Arc::new(http), tls))
                    };
                    match started.await {
                        Ok((server, http, tls)) => {
                            let _ = ready_tx.send(Ok((
                                server.address(),
                                (http.address(), tls.address()),
                                Arc::clone(&server),
                                Arc::clone(&http),
                                stat,
                            )));
                            let _ = stop_rx.await;
                            drop((http, tls));
                        }
                        Err(error) => {
                            let _ = ready_tx.send(Err(error));
                        }
                    }
                });
            })?;
        let (dns, (http, tls), server, http_server, stat_path) = ready_rx
            .recv_timeout(Duration::from_secs(300))
            .context("the fixtures did not start")??;
        Ok(Self {
            dns,
            http,
            tls,
            stat_path,
            server,
            http_server,
            stop: Some(stop_tx),
        })
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
