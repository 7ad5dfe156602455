//! `emporium`: one binary, many subcommands. Parses the command line, starts telemetry and
//! hands over to the library code.

use clap::Parser;

/// mimalloc: the server allocates many small short-lived buffers per request, where glibc's
/// allocator showed up at the top of the profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = emporium::cli::Cli::parse();
    emporium::telemetry::init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(emporium::run(cli))
}
