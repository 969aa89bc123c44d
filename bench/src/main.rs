//! `mpic-bench`: the load harness. `loopback` (self-contained: fixtures, a node in-process or
//! the real binary, a primary over QUIC verifying every signature) and `remote` (running nodes)
//! drive validations and measure throughput, latency, CPU and memory; `zone` prints the zone an
//! external authoritative server must serve. `dns` measures the node's DNS client (and, with
//! `--dnsperf`, the C load generator) against the fixture; `engine` the check engine
//! in-process; `dnssec` validated against unvalidated lookups; `peer` Open MPIC's own checkers
//! beside this node's engine and binary, against one Knot DNS and nginx; `summary` the
//! performance table from the JSON files `make bench` wrote.

mod dns;
mod dnssec;
mod engine;
mod fixture;
mod harness;
mod load;
mod peer;
mod report;
mod soak;
mod subject;
mod summary;
mod workload;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "mpic-bench", version, about = "Load harness for mpic-node")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validations at a node started here, against loopback fixtures (the default harness).
    Loopback(Box<harness::LoopbackArgs>),
    /// Validations at running nodes.
    Remote(Box<harness::RemoteArgs>),
    /// Print the zone an external authoritative server must serve for `loopback --dns`.
    Zone(harness::ZoneArgs),
    /// DNS client throughput against the loopback fixture server.
    Dns(dns::DnsArgs),
    /// Check engine throughput in-process (no transport) against the fixture server.
    Engine(engine::EngineArgs),
    /// Uncached lookups/s with DNSSEC validation on and off, on one ldns-signed zone.
    Dnssec(dnssec::DnssecArgs),
    /// Open MPIC's checkers, this node's engine and its binary side by side (Knot DNS, nginx).
    Peer(Box<peer::PeerArgs>),
    /// The real binary under steady load for a long time, with faults; fails on growth or loss.
    Soak(Box<soak::SoakArgs>),
    /// The performance table of `make bench`, read from the JSON files it wrote (Markdown).
    Summary(summary::SummaryArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("mpic-bench: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Loopback(args) => harness::loopback(*args).await,
            Command::Remote(args) => harness::remote(*args).await,
            Command::Zone(args) => {
                harness::zone(&args);
                Ok(())
            }
            Command::Dns(args) => dns::run(args).await,
            Command::Engine(args) => engine::run(args).await,
            Command::Dnssec(args) => dnssec::run(args).await,
            Command::Peer(args) => peer::run(*args).await,
            Command::Soak(args) => soak::run(*args).await,
            Command::Summary(args) => summary::run(&args),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mpic-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}
