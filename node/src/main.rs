//! The `mpic-node` command: run the daemon, manage keys and certificates, describe the node.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use mpic_node::config::{Config, LogFormat};
use mpic_node::credentials::{self, dev::DevPaths};
use tokio_util::sync::CancellationToken;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit status for usage and configuration errors (runtime failures exit 1).
const EXIT_CONFIG: u8 = 2;

#[derive(Parser)]
#[command(
    name = "mpic-node",
    version,
    about = "A remote network perspective for Multi-Perspective Issuance Corroboration (BR 3.2.2.9)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the node. Without --config it runs the embedded loopback development config.
    Run {
        /// TOML config file (see deploy/mpic-node.example.toml).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Generate a result-signing key (Ed25519, PKCS#8 PEM, mode 0600) and print its public key.
    Keygen {
        /// Where to write the key; never overwrites.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the perspective id, RIR, public key and listen addresses of a config.
    Info {
        /// TOML config file; default: the embedded loopback config.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Print the perspective manifest (JSON, signed with the result-signing key): perspective,
    /// RIR, location, egress addresses and prefixes, User-Agent, DNS source addresses, keys
    /// with validity and the software version.
    Manifest {
        /// TOML config file; default: the embedded loopback config.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Check this host before go-live: config, credentials and key permissions, clock sync,
    /// ports, state directory, DNS, and reachability of test targets (exit 0 ready, 1 not).
    Doctor {
        /// TOML config file.
        #[arg(long)]
        config: PathBuf,
        /// A `host:port` to reach over IPv4 and IPv6 from the egress addresses (repeatable).
        #[arg(long = "target", value_name = "HOST:PORT")]
        targets: Vec<String>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Send no traffic: skip the DNS and reachability checks.
        #[arg(long)]
        offline: bool,
        /// Also show each DNS server asked (the root servers or upstreams, and the servers of
        /// each target's host): smoothed RTT, failures, backoff, lameness.
        #[arg(long)]
        dns_servers: bool,
    },
    /// Certificate helpers.
    Certs {
        #[command(subcommand)]
        command: CertsCommand,
    },
    /// Run one check with the node's own stack and print the result (exit 0 pass, 1 fail,
    /// 2 usage or configuration error).
    Check {
        #[command(subcommand)]
        command: CheckCommand,
    },
}

#[derive(Subcommand)]
enum CheckCommand {
    /// CAA: may the CA issue for this name (BR 3.2.2.8, RFC 8659/8657)?
    Caa(Box<mpic_node::check::CaaArgs>),
    /// Domain-control validation by one method.
    Dcv(Box<mpic_node::check::DcvArgs>),
}

#[derive(Subcommand)]
enum CertsCommand {
    /// Generate a development CA, node and primary certificates and a signing key (loopback only).
    Dev {
        /// Output directory; existing files are never overwritten.
        #[arg(long, default_value = "mpic-node-state/dev")]
        out: PathBuf,
        /// Common name of the primary's client certificate.
        #[arg(long, default_value = "mpic-dev-primary")]
        primary_name: String,
    },
    /// Issue one more primary client certificate from an existing development CA
    /// (`<dir>/ca.key`), written as `<dir>/<name>.pem` and `<dir>/<name>.key`.
    Client {
        /// Directory holding the development CA (as made by `certs dev`).
        #[arg(long, default_value = "mpic-node-state/dev")]
        dir: PathBuf,
        /// Common name and file stem of the new certificate.
        #[arg(long)]
        name: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config } => run(config.as_deref()),
        Command::Keygen { out } => report(keygen(&out)),
        Command::Manifest { config } => match load_config(config.as_deref()) {
            Ok(config) => report(manifest(&config)),
            Err(code) => code,
        },
        Command::Info { config, json } => match load_config(config.as_deref()) {
            Ok(config) => report(info(&config, json)),
            Err(code) => code,
        },
        Command::Certs {
            command: CertsCommand::Dev { out, primary_name },
        } => report(certs_dev(&out, &primary_name)),
        Command::Certs {
            command: CertsCommand::Client { dir, name },
        } => report(certs_client(&dir, &name)),
        Command::Check { command } => check(command),
        Command::Doctor {
            config,
            targets,
            json,
            offline,
            dns_servers,
        } => doctor(&config, &targets, json, offline, dns_servers),
    }
}

#[allow(clippy::print_stdout, reason = "CLI output")]
fn doctor(
    config: &Path,
    targets: &[String],
    json: bool,
    offline: bool,
    dns_servers: bool,
) -> ExitCode {
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    let report = runtime.block_on(mpic_node::doctor::run(
        config,
        targets,
        offline,
        dns_servers,
    ));
    if json {
        println!(
            "{}",
            serde_json::json!({"passed": report.passed(), "rows": report.rows})
        );
    } else {
        print!("{}", report.table());
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[allow(clippy::print_stdout, reason = "CLI output")]
fn check(command: CheckCommand) -> ExitCode {
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    let (outcome, json) = runtime.block_on(async {
        match &command {
            CheckCommand::Caa(args) => (mpic_node::check::caa(args).await, args.common.json),
            CheckCommand::Dcv(args) => (mpic_node::check::dcv(args).await, args.common.json),
        }
    });
    match outcome {
        Ok(result) => {
            if json {
                println!("{}", result.to_json());
            } else {
                print!("{}", result.summary());
            }
            ExitCode::from(result.exit_code())
        }
        Err(error) => {
            eprintln!("mpic-node: {error}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

/// The multi-threaded runtime, or `None` after saying why it could not start.
fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => Some(runtime),
        Err(error) => {
            eprintln!("mpic-node: cannot start the async runtime: {error}");
            None
        }
    }
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mpic-node: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(path: Option<&Path>) -> Result<Config, ExitCode> {
    let loaded = match path {
        Some(path) => Config::load(path),
        None => Config::embedded_default(),
    };
    loaded.map_err(|error| {
        eprintln!("mpic-node: invalid configuration: {error}");
        ExitCode::from(EXIT_CONFIG)
    })
}

fn run(path: Option<&Path>) -> ExitCode {
    let config = match load_config(path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let log_level = init_logging(&config);
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    report(runtime.block_on(async move {
        if path.is_none() {
            eprintln!(
                "mpic-node: no --config given: running the embedded loopback development config"
            );
        }
        if let Some(paths) = mpic_node::daemon::ensure_dev_credentials(&config)? {
            eprintln!("mpic-node: generated development credentials:");
            for (what, path) in paths.all() {
                eprintln!("  {what:<20} {}", path.display());
            }
        }
        let shutdown = CancellationToken::new();
        mpic_node::shutdown::cancel_on_signal(shutdown.clone())
            .context("installing signal handlers")?;
        let key_path = config.signing.key.clone();
        let options = mpic_node::daemon::RunOptions {
            config_path: path.map(Path::to_path_buf),
            log_level,
        };
        mpic_node::daemon::run_with(
            config,
            shutdown,
            |listening| {
                // One machine-readable line on stdout so scripts and tests learn the bound ports.
                let quic: Vec<String> = listening.quic.iter().map(ToString::to_string).collect();
                #[allow(clippy::print_stdout, reason = "the ready line is the CLI's output")]
                {
                    let openmpic = if listening.openmpic.is_empty() {
                        String::new()
                    } else {
                        let addresses: Vec<String> =
                            listening.openmpic.iter().map(ToString::to_string).collect();
                        format!(" openmpic={}", addresses.join(","))
                    };
                    println!(
                        "ready quic={} metrics={} signing_key={}{openmpic}",
                        quic.join(","),
                        listening.metrics,
                        key_path.display()
                    );
                }
            },
            options,
        )
        .await
    }))
}

/// Installs the subscriber; returns the setter a reload uses for `logging.level` (none when
/// `RUST_LOG` overrides the config).
fn init_logging(config: &Config) -> Option<mpic_node::reload::LogLevelSetter> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let from_env = tracing_subscriber::EnvFilter::try_from_default_env().ok();
    let overridden = from_env.is_some();
    let filter = from_env
        .or_else(|| tracing_subscriber::EnvFilter::try_new(&config.logging.level).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info"));
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let registry = tracing_subscriber::registry().with(filter);
    match config.logging.format {
        LogFormat::Json => registry.with(fmt.json()).init(),
        LogFormat::Text => registry.with(fmt).init(),
    }
    if overridden {
        return None;
    }
    Some(std::sync::Arc::new(move |level: &str| {
        let filter = tracing_subscriber::EnvFilter::try_new(level)?;
        Ok(handle.reload(filter)?)
    }))
}

#[allow(clippy::print_stdout, reason = "CLI output")]
fn keygen(out: &Path) -> anyhow::Result<()> {
    let key = credentials::write_new_signing_key(out)?;
    println!("wrote {}", out.display());
    println!("public_key = \"{}\"", key.verifying_key().to_base64());
    println!("key_id = \"{}\"", key.key_id());
    Ok(())
}

#[allow(clippy::print_stdout, reason = "CLI output")]
fn manifest(config: &Config) -> anyhow::Result<()> {
    let key = credentials::load_signing_key(&config.signing.key)
        .context("loading the signing key (signing.key)")?;
    let retired = mpic_node::reload::manifest_retired(&config.state.directory);
    let now = mpic_node::service::unix_ms();
    print!(
        "{}",
        mpic_node::manifest::render(config, &key, &retired, now)?
    );
    Ok(())
}

#[allow(clippy::print_stdout, reason = "CLI output")]
fn info(config: &Config, json: bool) -> anyhow::Result<()> {
    let key = credentials::load_signing_key(&config.signing.key)
        .context("loading the signing key (signing.key)")?;
    let listen: Vec<String> = config.quic.listen.iter().map(ToString::to_string).collect();
    // Keys rotated out by a reload stay listed for their grace period: primaries may still
    // hold results they signed.
    let retired = mpic_node::reload::retired_keys(&config.state.directory);
    if json {
        let value = serde_json::json!({
            "perspective_id": config.perspective.id.as_str(),
            "rir": config.perspective.rir.as_str(),
            "location": config.perspective.location,
            "shadow": config.perspective.shadow,
            "public_key": key.verifying_key().to_base64(),
            "key_id": key.key_id().as_str(),
            "quic_listen": listen,
            "metrics_listen": config.metrics.listen.to_string(),
            "retired_keys": retired,
        });
        println!("{value}");
    } else {
        println!("perspective_id  {}", config.perspective.id);
        println!("rir             {}", config.perspective.rir);
        println!("location        {}", config.perspective.location);
        println!("shadow          {}", config.perspective.shadow);
        println!("public_key      {}", key.verifying_key().to_base64());
        println!("key_id          {}", key.key_id());
        println!("quic_listen     {}", listen.join(", "));
        println!("metrics_listen  {}", config.metrics.listen);
        for key in &retired {
            println!(
                "retired_key     {} {} (listed until {})",
                key.key_id,
                key.public_key,
                humantime::format_rfc3339_seconds(
                    std::time::UNIX_EPOCH + std::time::Duration::from_millis(key.until_unix_ms)
                )
            );
        }
    }
    Ok(())
}

#[allow(clippy::print_stdout, reason = "CLI output")]
fn certs_client(dir: &Path, name: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "--name must be letters, digits, '-' or '_' (it becomes a file name)"
    );
    let (cert, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    credentials::dev::issue_client_certificate(&DevPaths::in_directory(dir), name, &cert, &key)?;
    println!("client certificate   {}", cert.display());
    println!("client key           {}", key.display());
    Ok(())
}

#[allow(clippy::print_stdout, reason = "CLI output")]
fn certs_dev(out: &Path, primary_name: &str) -> anyhow::Result<()> {
    let paths = DevPaths::in_directory(out);
    let key = credentials::dev::generate(&paths, primary_name)?;
    for (what, path) in paths.all() {
        println!("{what:<20} {}", path.display());
    }
    println!("public_key           {}", key.verifying_key().to_base64());
    println!("key_id               {}", key.key_id());
    Ok(())
}
