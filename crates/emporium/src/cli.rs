//! Command-line flags; every `serve` flag can also be set as an `EMPORIUM_*` variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "emporium",
    version,
    about = "A headless e-commerce platform in one binary"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API with the background worker in-process.
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate(DbArgs),
    /// Load the demo catalog and demo accounts into an empty database and exit.
    Seed(DbArgs),
    /// Rebuild this node's search index from the database and exit (stop the server first).
    Reindex(DbArgs),
    /// Benchmarks against a release server.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Quality evaluations on labelled data.
    #[command(subcommand)]
    Eval(EvalCommand),
}

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// NDCG@10 of product search on graded judgments, against BM25 baselines.
    Search(EvalSearchArgs),
}

#[derive(Debug, Clone, Args)]
pub struct EvalSearchArgs {
    /// The Home Depot judgments (read at run time, never copied into the project).
    #[arg(long, default_value = "../shared/data/home_depot/train_utf8.csv")]
    pub judgments: PathBuf,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The PostgreSQL pool's size unless `--db-connections` says otherwise.
pub const DEFAULT_DB_CONNECTIONS: u32 = 16;

#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// Where the SQLite database and the search index live; created if missing.
    #[arg(long, env = "EMPORIUM_DATA_DIR", default_value = "./emporium-data")]
    pub data_dir: PathBuf,
    /// `postgres://...` selects PostgreSQL; default: SQLite in the data directory.
    #[arg(long, env = "EMPORIUM_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Connections in the PostgreSQL pool (SQLite keeps one writer and eight readers).
    #[arg(long, env = "EMPORIUM_DB_CONNECTIONS", default_value_t = DEFAULT_DB_CONNECTIONS)]
    pub db_connections: u32,
    /// SQLite: scheduling priority of the writer connection's thread, 1-99 (99 = nice -20;
    /// needs CAP_SYS_NICE, else it stays normal with a warning); 0 leaves it as inherited.
    #[arg(long, env = "EMPORIUM_SQLITE_WRITER_PRIORITY", default_value_t = emporium_store::MAX_WRITER_PRIORITY,
          value_parser = clap::value_parser!(u8).range(0..=99))]
    pub sqlite_writer_priority: u8,
}

impl DbArgs {
    /// The writer priority for [`emporium_store::DbConfig`]: `None` for 0.
    pub fn writer_priority(&self) -> Option<u8> {
        (self.sqlite_writer_priority > 0).then_some(self.sqlite_writer_priority)
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[arg(long, env = "EMPORIUM_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub db: DbArgs,
    /// Load the demo catalog and demo accounts on first start.
    #[arg(long, env = "EMPORIUM_DEMO")]
    pub demo: bool,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "EMPORIUM_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Requests running longer are stopped with 503, in seconds.
    #[arg(long, env = "EMPORIUM_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,
    /// `batched` (group commit) or `naive` (one transaction per reservation attempt).
    #[arg(long, env = "EMPORIUM_RESERVATION_MODE", default_value = "batched")]
    pub reservation_mode: String,
    /// Most reservation attempts per batch.
    #[arg(long, env = "EMPORIUM_BATCH_MAX", default_value_t = 1024)]
    pub batch_max: usize,
    /// How long the engine waits for more attempts before committing a batch, in microseconds.
    #[arg(long, env = "EMPORIUM_BATCH_WAIT_US", default_value_t = 500)]
    pub batch_wait_us: u64,
    /// Reservation attempts waiting beyond this get 429 with Retry-After.
    #[arg(long, env = "EMPORIUM_MAX_QUEUE", default_value_t = 20_000)]
    pub max_queue: usize,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Product detail reads against the HTTP ceiling (`GET /healthz`) of this machine.
    Catalog(BenchArgs),
    /// Flash-sale reservations: batched engine against the naive design and the HTTP ceiling.
    FlashSale(FlashBenchArgs),
    /// Whole checkout journeys: cart, item, checkout with payment, order confirmation.
    Checkout(CheckoutBenchArgs),
    /// Product search over 100,000 products: search with facets, suggest, indexing rate.
    Search(SearchBenchArgs),
}

#[derive(Debug, Clone, Args)]
pub struct CheckoutBenchArgs {
    /// Also measure on this PostgreSQL (a fresh schema); SQLite is always measured.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Concurrent customers, each on its own keep-alive connection.
    #[arg(long, default_value_t = 64)]
    pub customers: usize,
    /// Seconds measured per database.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct SearchBenchArgs {
    /// Real queries and titles the catalog and the load are made from (read at run time).
    #[arg(long, default_value = "../shared/data/home_depot/train_utf8.csv")]
    pub judgments: PathBuf,
    /// Products in the generated catalog.
    #[arg(long, default_value_t = 100_000)]
    pub products: usize,
    /// Concurrent clients (keep-alive connections).
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Seconds measured per phase.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Build the catalog and index in this new directory and keep it (for diagnosis).
    #[arg(long)]
    pub keep_dir: Option<PathBuf>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct FlashBenchArgs {
    /// PostgreSQL to run on (each server gets a fresh schema); default: SQLite files.
    #[arg(long, conflicts_with = "url")]
    pub database_url: Option<String>,
    /// Drive a server that is already running (`http://host:port`) instead of starting one;
    /// only its own design is measured (no baseline). Needs `--target-database-url`.
    #[arg(long, requires = "target_database_url")]
    pub url: Option<String>,
    /// The database of the server at `--url` (`sqlite://path` or `postgres://...`): the bench
    /// prepares its SKU, sales and shoppers there (ready sessions, so no password hashing
    /// while measuring) and checks the stock equation there afterwards.
    #[arg(long, requires = "url")]
    pub target_database_url: Option<String>,
    /// Concurrent shoppers (keep-alive connections).
    #[arg(long, default_value_t = 256)]
    pub connections: usize,
    /// Seconds measured per phase.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Distinct shoppers created before measuring (each can hold one reservation).
    #[arg(long, default_value_t = 300_000)]
    pub shoppers: usize,
    /// Units of the sale that sells out under load (the oversell check).
    #[arg(long, default_value_t = 500)]
    pub sell_out_units: i64,
    /// Rounds per design: each phase's `--seconds` is split into this many rounds of
    /// granting, sold-out and ceiling in turn, and ratios are medians over rounds.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Skip the naive baseline.
    #[arg(long)]
    pub no_baseline: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Target a running server instead of starting one (it must serve the demo catalog).
    #[arg(long)]
    pub url: Option<String>,
    /// Database of the started server (default: SQLite in a temporary directory).
    #[arg(long)]
    pub database_url: Option<String>,
    /// Keep-alive connections.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Seconds measured per round and endpoint.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Rounds; each round measures every endpoint once, alternating, and medians are reported.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}
