//! `mpic-node run`: assembles the node from its config (credentials, signer, QUIC listeners,
//! metrics listener), serves until SIGTERM/SIGINT, then drains within the grace period.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use mpic_protocol::PerspectiveInfo;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::credentials::{self, dev::DevPaths};
use crate::dispatch::Dispatcher;
use crate::http::pool::AbortOnDrop;
use crate::metrics::Metrics;
use crate::quic::{self, Service, admission::Admission};
use crate::signing::ResultSigner;

/// Where the node actually listens (ports resolved when the config asked for port 0).
#[derive(Debug, Clone)]
pub struct Listening {
    /// QUIC addresses.
    pub quic: Vec<SocketAddr>,
    /// Metrics address.
    pub metrics: SocketAddr,
    /// Open MPIC HTTPS addresses (empty when `[openmpic]` is off).
    pub openmpic: Vec<SocketAddr>,
}

/// Creates the dev credentials the config points at when `[dangerous] generate_dev_credentials`
/// is on and any of them is missing. Returns the paths written, if any.
pub fn ensure_dev_credentials(config: &Config) -> anyhow::Result<Option<DevPaths>> {
    if !config.dangerous.generate_dev_credentials {
        return Ok(None);
    }
    let paths = DevPaths {
        ca_certificate: config.quic.client_ca.clone(),
        ca_key: config.quic.client_ca.with_extension("key"),
        node_certificate: config.quic.certificate.clone(),
        node_key: config.quic.private_key.clone(),
        primary_certificate: config.quic.client_ca.with_file_name("primary.pem"),
        primary_key: config.quic.client_ca.with_file_name("primary.key"),
        signing_key: config.signing.key.clone(),
    };
    let present = paths.all().iter().filter(|(_, path)| path.exists()).count();
    match present {
        7 => Ok(None),
        0 => {
            credentials::dev::generate(&paths, "mpic-dev-primary")
                .context("generating development credentials")?;
            Ok(Some(paths))
        }
        _ => anyhow::bail!(
            "some development credential files exist and some do not (see {}); remove the partial set or provide every file",
            config.quic.client_ca.display()
        ),
    }
}

/// What `run_with` can do beyond serving.
#[derive(Default, Clone)]
pub struct RunOptions {
    /// The config file, re-read on SIGHUP (without it SIGHUP only reopens the audit log).
    pub config_path: Option<std::path::PathBuf>,
    /// Applies a new `logging.level` on reload.
    pub log_level: Option<crate::reload::LogLevelSetter>,
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("config_path", &self.config_path)
            .field("log_level", &self.log_level.is_some())
            .finish()
    }
}

/// Runs the node until `shutdown` is cancelled, calling `ready` once every listener is bound.
pub async fn run(
    config: Config,
    shutdown: CancellationToken,
    ready: impl FnOnce(&Listening),
) -> anyhow::Result<()> {
    run_with(config, shutdown, ready, RunOptions::default()).await
}

/// [`run`], with SIGHUP reloading the config file in `options` (see [`crate::reload`]).
pub async fn run_with(
    config: Config,
    shutdown: CancellationToken,
    ready: impl FnOnce(&Listening),
    options: RunOptions,
) -> anyhow::Result<()> {
    let metrics = Metrics::new().context("registering metrics")?;
    for option in config.dangerous_options() {
        tracing::warn!(option, "DANGEROUS option enabled: not for production");
        metrics
            .dangerous_options
            .with_label_values(&[option])
            .set(1);
    }
    if config.caa.case_insensitive_method_labels {
        tracing::info!(
            "caa.case_insensitive_method_labels: validationmethods labels match ignoring ASCII case; BR 4.2.2.1.2 requires the CP/CPS to say so"
        );
    }
    let key = credentials::load_signing_key(&config.signing.key)
        .context("loading the signing key (signing.key)")?;
    tracing::info!(key_id = %key.key_id(), public_key = %key.verifying_key().to_base64(), "result signing key loaded");
    let perspective = PerspectiveInfo {
        id: config.perspective.id.clone(),
        rir: config.perspective.rir,
        location: config.perspective.location.clone(),
        shadow: config.perspective.shadow,
    };
    let dns_settings = config.dns.settings().context("loading dns.root_hints")?;
    let dns = crate::dns::DnsClient::new(dns_settings, metrics.dns.clone());
    let mut web = crate::dispatch::WebClients::new(config.http.fetch_options(&config.dangerous))
        .context("setting up the HTTP and TLS-ALPN clients ([http] table)")?;
    web.fetcher = web.fetcher.with_metrics(metrics.http.clone());
    let audit = Arc::new(
        crate::audit::AuditLog::open(config.audit.clone())
            .context("opening the audit log ([audit] path)")?,
    );
    // SIGHUP reopens the audit file (after logrotate moved it). Installed before serving: an
    // unhandled SIGHUP would end the process.
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("installing the SIGHUP handler")?;
    let service = Arc::new(Service {
        audit: Arc::clone(&audit),
        limits: config.limits.clone(),
        signer: std::sync::RwLock::new(Arc::new(ResultSigner::new(key, perspective))),
        dispatcher: Dispatcher {
            caa: config.caa.policy_options(),
            ..Dispatcher::new(dns, web)
        },
        metrics: Arc::clone(&metrics),
        admission: Admission::new(
            config.limits.max_in_flight_requests,
            config.limits.max_in_flight_per_primary,
        ),
        pins: std::sync::RwLock::new(Arc::new(config.quic.client_spki_pins.clone())),
    });
    let server_config =
        quic::server_config(&config.quic).context("setting up QUIC/TLS ([quic] table)")?;
    metrics.record_certificate_expiry(&config.quic);
    let endpoints = quic::bind(&config.quic, &server_config)?;
    let metrics_listener = tokio::net::TcpListener::bind(config.metrics.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on metrics.listen = {}",
                config.metrics.listen
            )
        })?;
    let mut openmpic_listeners = Vec::new();
    let openmpic_tls = if config.openmpic.enabled() {
        let tls = crate::openmpic::tls_config(&config.quic).context(
            "setting up the Open MPIC listener's TLS ([openmpic] with the [quic] files)",
        )?;
        for &address in &config.openmpic.listen {
            openmpic_listeners.push(
                tokio::net::TcpListener::bind(address)
                    .await
                    .with_context(|| format!("cannot listen on openmpic.listen = {address}"))?,
            );
        }
        Some(Arc::new(std::sync::RwLock::new(tls)))
    } else {
        None
    };
    let listening = Listening {
        quic: endpoints
            .iter()
            .map(|e| e.local_addr())
            .collect::<Result<_, _>>()?,
        metrics: metrics_listener.local_addr()?,
        openmpic: openmpic_listeners
            .iter()
            .map(|l| l.local_addr())
            .collect::<Result<_, _>>()?,
    };

    let reloader = options.config_path.clone().map(|path| {
        crate::reload::Reloader::new(
            path,
            config.clone(),
            Arc::clone(&service),
            endpoints.clone(),
            openmpic_tls.clone(),
            options.log_level.clone(),
        )
    });
    let (reopen, reload_metrics) = (Arc::clone(&audit), Arc::clone(&metrics));
    let _hangup_task = AbortOnDrop(tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            match reopen.reopen() {
                Ok(()) => tracing::info!("SIGHUP: audit log reopened"),
                Err(error) => {
                    tracing::error!(%error, "SIGHUP: audit log not reopened; still writing to the old file")
                }
            }
            let Some(reloader) = &reloader else { continue };
            match reloader.reload() {
                Ok(changes) => {
                    reload_metrics
                        .config_reloads
                        .with_label_values(&["applied"])
                        .inc();
                    for change in changes {
                        tracing::info!(change, "SIGHUP: config reloaded");
                    }
                }
                Err(error) => {
                    reload_metrics
                        .config_reloads
                        .with_label_values(&["rejected"])
                        .inc();
                    tracing::error!(%error, "SIGHUP: reload rejected; the running config keeps serving");
                }
            }
        }
    }));
    let tracker = TaskTracker::new();
    let metrics_shutdown = CancellationToken::new();
    let metrics_task = tokio::spawn(crate::metrics::serve(
        metrics_listener,
        Arc::clone(&metrics),
        metrics_shutdown.clone(),
    ));
    let mut accept_loops = tokio::task::JoinSet::new();
    for endpoint in &endpoints {
        accept_loops.spawn(quic::serve(
            endpoint.clone(),
            Arc::clone(&service),
            config.quic.max_connections as usize,
            shutdown.clone(),
            tracker.clone(),
        ));
    }
    if let Some(tls) = &openmpic_tls {
        let openmpic_config = Arc::new(config.openmpic.clone());
        for listener in openmpic_listeners {
            accept_loops.spawn(crate::openmpic::serve(
                listener,
                Arc::clone(tls),
                Arc::clone(&service),
                Arc::clone(&openmpic_config),
                shutdown.clone(),
                tracker.clone(),
            ));
        }
    }
    tracing::info!(quic = ?listening.quic, openmpic = ?listening.openmpic, metrics = %listening.metrics, perspective = %config.perspective.id, "node ready");
    ready(&listening);
    metrics.ready.set(1);
    let notifier = Arc::new(crate::notify::Notifier::from_env());
    notifier.notify("READY=1\nSTATUS=serving");
    // Kept up through the drain too: the manager's watchdog still runs while we stop.
    let watchdog = notifier.watchdog_interval().map(|interval| {
        let notifier = Arc::clone(&notifier);
        AbortOnDrop(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            loop {
                ticks.tick().await;
                notifier.notify("WATCHDOG=1");
            }
        }))
    });

    shutdown.cancelled().await;
    metrics.ready.set(0);
    notifier.notify("STOPPING=1\nSTATUS=draining");
    // Drain: accept loops stop, connections stop taking streams, in-flight requests finish
    // within the grace period; then close every connection and stop metrics last.
    while accept_loops.join_next().await.is_some() {}
    tracker.close();
    let grace = config.shutdown.grace_period;
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        tracing::warn!(
            grace_ms = grace.as_millis() as u64,
            in_flight = metrics.requests_in_flight.get(),
            "grace period over; abandoning in-flight requests"
        );
    }
    for endpoint in &endpoints {
        endpoint.close(
            mpic_protocol::close_code::SHUTTING_DOWN.into(),
            b"node is shutting down",
        );
    }
    for endpoint in &endpoints {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), endpoint.wait_idle()).await;
    }
    metrics_shutdown.cancel();
    let _ = metrics_task.await;
    drop(watchdog);
    tracing::info!("stopped");
    Ok(())
}
