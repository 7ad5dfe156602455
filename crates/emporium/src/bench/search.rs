//! `emporium bench search` (to come).

use crate::cli::SearchBenchArgs;

pub async fn run(_args: SearchBenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
