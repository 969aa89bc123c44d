//! `mpic-node run`: assembles the node from its config (credentials, signer, QUIC listeners,
//! metrics listener), serves until SIGTERM/SIGINT, then drains within the grace period.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use mpic_protocol::PerspectiveInfo;
use tokio::signal::unix::Signal;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::credentials::{self, dev::DevPaths};
use crate::dispatch::Dispatcher;
use crate::doctor::open_files;
use crate::http::pool::AbortOnDrop;
use crate::metrics::{Metrics, ReloadResult};
use crate::notify::Notifier;
use crate::quic;
use crate::reload::Reloader;
use crate::service::{NodeState, Service};
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
    announce_options(&config, &metrics);
    raise_open_files(&config);
    let state = build_state(&config, &metrics)?;
    // SIGHUP reopens the audit file (after logrotate moved it). Installed before serving: an
    // unhandled SIGHUP would end the process.
    let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("installing the SIGHUP handler")?;
    metrics.record_certificate_expiry(&config.quic);
    let service = Arc::new(Service::new(state, Arc::clone(&metrics)));
    crate::reload::publish_manifest(&service, &config, service.state().signer.key());
    let listeners = Listeners::bind(&config, &service.state()).await?;
    let listening = listeners.addresses()?;
    let reloader = options
        .config_path
        .clone()
        .map(|path| Reloader::new(path, Arc::clone(&service), options.log_level.clone()));
    let _hangup_task = AbortOnDrop(tokio::spawn(on_hangup(
        hangup,
        Arc::clone(&service),
        listeners.quic.clone(),
        reloader,
    )));
    let serving = serve(listeners, &service, &config, &shutdown);
    tracing::info!(quic = ?listening.quic, openmpic = ?listening.openmpic, metrics = %listening.metrics, perspective = %config.perspective.id, "node ready");
    ready(&listening);
    metrics.ready.set(1);
    let notifier = Arc::new(Notifier::from_env());
    notifier.notify("READY=1\nSTATUS=serving");
    // Kept up through the drain too: the manager's watchdog still runs while we stop.
    let watchdog = watchdog(&notifier);

    shutdown.cancelled().await;
    metrics.ready.set(0);
    notifier.notify("STOPPING=1\nSTATUS=draining");
    serving.drain(&service, config.shutdown.grace_period).await;
    drop(watchdog);
    tracing::info!("stopped");
    Ok(())
}

/// Raises the soft open-file limit to the hard one (logged), and warns when what the node may
/// then open is below what its admission limits may need (see [`open_files`]).
fn raise_open_files(config: &Config) {
    let limit = match open_files::raise_soft_to_hard() {
        Ok((before, after)) => {
            if before != after {
                tracing::info!(from = ?before.soft, to = ?after.soft, "open-file limit (RLIMIT_NOFILE) raised to the hard limit");
            }
            after
        }
        Err(error) => {
            tracing::warn!(%error, "open-file limit (RLIMIT_NOFILE) not raised");
            open_files::NofileLimit::current()
        }
    };
    if let Some(shortfall) = open_files::shortfall(limit.soft, &config.limits) {
        tracing::warn!(soft = ?limit.soft, hard = ?limit.hard, "{shortfall}");
    }
}

/// Logs (and exports on a gauge) every `[dangerous]` option turned on, and the CP/CPS choices
/// the operator must be able to point at.
fn announce_options(config: &Config, metrics: &Metrics) {
    for option in config.dangerous_options() {
        tracing::warn!(option, "DANGEROUS option enabled: not for production");
        metrics.flag_dangerous_option(option);
    }
    if config.caa.case_insensitive_method_labels {
        tracing::info!(
            "caa.case_insensitive_method_labels: validationmethods labels match ignoring ASCII case; BR 4.2.2.1.2 requires the CP/CPS to say so"
        );
    }
}

/// The node's state from its config: signer, resolver and web clients (the dispatcher), audit
/// log, pins and the listeners' TLS configurations.
fn build_state(config: &Config, metrics: &Metrics) -> anyhow::Result<NodeState> {
    let key = credentials::load_signing_key(&config.signing.key)
        .context("loading the signing key (signing.key)")?;
    tracing::info!(key_id = %key.key_id(), public_key = %key.verifying_key().to_base64(), "result signing key loaded");
    let perspective = PerspectiveInfo {
        id: config.perspective.id.clone(),
        rir: config.perspective.rir,
        location: config.perspective.location.clone(),
        shadow: config.perspective.shadow,
    };
    let dns_settings =
        crate::dns::DnsSettings::from_config(&config.dns).context("loading dns.root_hints")?;
    let dns = crate::dns::DnsClient::new(dns_settings, metrics.dns.clone());
    let mut web = crate::dispatch::WebClients::new(crate::http::fetch::FetchOptions::from_config(
        &config.http,
        &config.dangerous,
    ))
    .context("setting up the HTTP and TLS-ALPN clients ([http] table)")?;
    web.fetcher = web.fetcher.with_metrics(metrics.http.clone());
    let audit = crate::audit::AuditLog::open(config.audit.clone())
        .context("opening the audit log ([audit] path)")?;
    let quic_server =
        quic::server_config(&config.quic).context("setting up QUIC/TLS ([quic] table)")?;
    let openmpic_tls = if config.openmpic.enabled() {
        Some(crate::openmpic::tls_config(&config.quic).context(
            "setting up the Open MPIC listener's TLS ([openmpic] with the [quic] files)",
        )?)
    } else {
        None
    };
    Ok(NodeState {
        config: Arc::new(config.clone()),
        signer: Arc::new(ResultSigner::new(key, perspective)),
        pins: Arc::new(config.quic.client_spki_pins.clone()),
        quic_server,
        openmpic_tls,
        dispatcher: Arc::new(Dispatcher {
            caa: crate::checks::caa::policy::PolicyOptions::from_config(&config.caa),
            ..Dispatcher::new(dns, web)
        }),
        audit: Arc::new(audit),
        limits: config.limits.clone(),
        tenants: Arc::new(crate::service::tenants::Tenants::new(&config.tenants, None)),
    })
}

/// Every bound listener, before serving.
struct Listeners {
    quic: Vec<quinn::Endpoint>,
    metrics: tokio::net::TcpListener,
    openmpic: Vec<tokio::net::TcpListener>,
}

impl Listeners {
    /// Binds the QUIC endpoints, the metrics listener and the Open MPIC listeners (when on).
    async fn bind(config: &Config, state: &NodeState) -> anyhow::Result<Self> {
        let quic = quic::bind(&config.quic, &state.quic_server)?;
        let metrics = tokio::net::TcpListener::bind(config.metrics.listen)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on metrics.listen = {}",
                    config.metrics.listen
                )
            })?;
        let mut openmpic = Vec::new();
        if state.openmpic_tls.is_some() {
            for &address in &config.openmpic.listen {
                openmpic.push(
                    tokio::net::TcpListener::bind(address)
                        .await
                        .with_context(|| format!("cannot listen on openmpic.listen = {address}"))?,
                );
            }
        }
        Ok(Self {
            quic,
            metrics,
            openmpic,
        })
    }

    /// The bound addresses (ports resolved).
    fn addresses(&self) -> anyhow::Result<Listening> {
        Ok(Listening {
            quic: self
                .quic
                .iter()
                .map(|e| e.local_addr())
                .collect::<Result<_, _>>()?,
            metrics: self.metrics.local_addr()?,
            openmpic: self
                .openmpic
                .iter()
                .map(|l| l.local_addr())
                .collect::<Result<_, _>>()?,
        })
    }
}

/// SIGHUP: reopen the audit file, then reload the config (when the node has a config file) and
/// hand the new QUIC server configuration to the endpoints.
async fn on_hangup(
    mut hangup: Signal,
    service: Arc<Service>,
    endpoints: Vec<quinn::Endpoint>,
    reloader: Option<Reloader>,
) {
    while hangup.recv().await.is_some() {
        match service.state().audit.reopen().await {
            Ok(()) => tracing::info!("SIGHUP: audit log reopened"),
            Err(error) => {
                tracing::error!(%error, "SIGHUP: audit log not reopened; still writing to the old file")
            }
        }
        let Some(reloader) = &reloader else { continue };
        match reloader.reload() {
            Ok(changes) => {
                let state = service.state();
                for endpoint in &endpoints {
                    endpoint.set_server_config(Some(state.quic_server.clone()));
                }
                service.metrics().count_reload(ReloadResult::Applied);
                for change in changes {
                    tracing::info!(change, "SIGHUP: config reloaded");
                }
            }
            Err(error) => {
                service.metrics().count_reload(ReloadResult::Rejected);
                tracing::error!(%error, "SIGHUP: reload rejected; the running config keeps serving");
            }
        }
    }
}

/// The running listeners and what the drain waits for.
struct Serving {
    endpoints: Vec<quinn::Endpoint>,
    accept_loops: tokio::task::JoinSet<()>,
    tracker: TaskTracker,
    metrics_task: tokio::task::JoinHandle<()>,
    metrics_shutdown: CancellationToken,
}

/// Starts the metrics listener and every accept loop; request tasks go on one tracker.
fn serve(
    listeners: Listeners,
    service: &Arc<Service>,
    config: &Config,
    shutdown: &CancellationToken,
) -> Serving {
    let tracker = TaskTracker::new();
    let metrics_shutdown = CancellationToken::new();
    let metrics_task = tokio::spawn(crate::metrics::serve(
        listeners.metrics,
        Arc::clone(service.metrics()),
        metrics_shutdown.clone(),
    ));
    let mut accept_loops = tokio::task::JoinSet::new();
    for endpoint in &listeners.quic {
        accept_loops.spawn(quic::serve(
            endpoint.clone(),
            Arc::clone(service),
            config.quic.max_connections as usize,
            shutdown.clone(),
            tracker.clone(),
        ));
    }
    let openmpic_config = Arc::new(config.openmpic.clone());
    for listener in listeners.openmpic {
        accept_loops.spawn(crate::openmpic::serve(
            listener,
            Arc::clone(service),
            Arc::clone(&openmpic_config),
            shutdown.clone(),
            tracker.clone(),
        ));
    }
    Serving {
        endpoints: listeners.quic,
        accept_loops,
        tracker,
        metrics_task,
        metrics_shutdown,
    }
}

/// How long closed QUIC endpoints get to tell their peers.
const ENDPOINT_CLOSE_WAIT: Duration = Duration::from_secs(1);

impl Serving {
    /// Drain: accept loops stop, connections stop taking streams, in-flight requests finish
    /// within `grace`; then every queued audit line is written, connections close and metrics
    /// stop last.
    async fn drain(mut self, service: &Service, grace: Duration) {
        while self.accept_loops.join_next().await.is_some() {}
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                grace_ms = grace.as_millis() as u64,
                in_flight = service.metrics().requests_in_flight.get(),
                "grace period over; abandoning in-flight requests"
            );
        }
        service.state().audit.close().await;
        for endpoint in &self.endpoints {
            endpoint.close(
                mpic_protocol::close_code::SHUTTING_DOWN.into(),
                b"node is shutting down",
            );
        }
        for endpoint in &self.endpoints {
            let _ = tokio::time::timeout(ENDPOINT_CLOSE_WAIT, endpoint.wait_idle()).await;
        }
        self.metrics_shutdown.cancel();
        let _ = self.metrics_task.await;
    }
}

/// Sends `WATCHDOG=1` at the interval the service manager asked for (none when it did not).
fn watchdog(notifier: &Arc<Notifier>) -> Option<AbortOnDrop> {
    notifier.watchdog_interval().map(|interval| {
        let notifier = Arc::clone(notifier);
        AbortOnDrop(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            loop {
                ticks.tick().await;
                notifier.notify("WATCHDOG=1");
            }
        }))
    })
}
