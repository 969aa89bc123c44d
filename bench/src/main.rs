//! `mpic-bench`: the load harness. `dns` measures the node's DNS client against the loopback
//! fixture authoritative server (and, with `--dnsperf`, the C load generator against the same
//! server for comparison). `engine` drives the check engine in-process (no transport). The full validation harness (`loopback`, `remote`) follows in the
//! bench issue.

mod dns;
mod dnssec;
mod engine;

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
    /// DNS client throughput against the loopback fixture server.
    Dns(dns::DnsArgs),
    /// Check engine throughput in-process (no transport) against the fixture server.
    Engine(engine::EngineArgs),
    /// Uncached lookups/s with DNSSEC validation on and off, on one ldns-signed zone.
    Dnssec(dnssec::DnssecArgs),
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
            Command::Dns(args) => dns::run(args).await,
            Command::Engine(args) => engine::run(args).await,
            Command::Dnssec(args) => dnssec::run(args).await,
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
