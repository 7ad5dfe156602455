//! Benchmark commands. Each starts a release server as a child process on a temporary data
//! directory (or targets `--url`), drives it over HTTP keep-alive from this process, and
//! reports medians over alternating rounds, so that designs are compared in one run on the
//! same noisy machine.

mod catalog;
mod checkout;
mod flash;
pub mod load;
mod search;
pub mod server;

use crate::cli::BenchCommand;

pub async fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Catalog(args) => catalog::run(args).await,
        BenchCommand::FlashSale(args) => flash::run(args).await,
        BenchCommand::Checkout(args) => checkout::run(args).await,
        BenchCommand::Search(args) => search::run(args).await,
    }
}

/// The median of some measurements (upper median for even counts).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}
