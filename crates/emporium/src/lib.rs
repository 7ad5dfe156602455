//! The `emporium` binary's library: command line, start-up, and the bench commands.
//!
//! Layout: `cli` (flags and subcommands), `serve` (start a node: database, migrations, demo
//! data, HTTP, background worker, graceful shutdown), `telemetry` (tracing), `bench` (load
//! generator and benchmark commands), `eval` (relevance evaluation).

pub mod bench;
pub mod cli;
pub mod eval;
pub mod fixtures;
pub mod serve;
pub mod telemetry;

use cli::{Cli, Command};

/// The demo catalog, compiled in so that the demo shop starts anywhere.
pub const DEMO_CATALOG: &[u8] = include_bytes!("../../../demo/catalog.json");

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::serve(args).await,
        Command::Migrate(args) => serve::migrate(&args).await,
        Command::Seed(args) => serve::seed(&args).await,
        Command::Reindex(args) => serve::reindex(&args).await,
        Command::Bench(cmd) => bench::run(cmd).await,
        Command::Eval(cmd) => eval::run(cmd).await,
    }
}
