//! Starting a server for a benchmark: this same executable, `serve --demo`, as a child
//! process on a temporary data directory and a free port.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::load::{Shot, fetch};

/// A running server; killed when dropped.
pub struct Server {
    pub addr: SocketAddr,
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
}

pub const BENCH_ADMIN_EMAIL: &str = "admin@example.com";
pub const BENCH_ADMIN_PASSWORD: &str = "bench-admin-password";

impl Server {
    /// Starts `emporium serve --demo` and waits until it is ready.
    pub async fn start(database_url: Option<&str>) -> anyhow::Result<Self> {
        Self::spawn(tempfile::tempdir()?, database_url, &["--demo"]).await
    }

    /// Starts `emporium serve` on an existing data directory with extra flags.
    pub async fn spawn(
        dir: tempfile::TempDir,
        database_url: Option<&str>,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?;
        let mut cmd = Command::new(exe);
        cmd.arg("serve")
            .args(extra)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(dir.path())
            .env("EMPORIUM_ADMIN_EMAIL", BENCH_ADMIN_EMAIL)
            .env("EMPORIUM_ADMIN_PASSWORD", BENCH_ADMIN_PASSWORD)
            .env(
                "RUST_LOG",
                std::env::var("EMPORIUM_BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if let Some(url) = database_url {
            cmd.arg("--database-url").arg(url);
        }
        let mut child = cmd.spawn().context("cannot start the server")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let addr = tokio::time::timeout(Duration::from_secs(120), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(url) = line.strip_prefix("emporium listening on http://") {
                    return Ok::<_, anyhow::Error>(url.parse::<SocketAddr>()?);
                }
            }
            bail!("the server exited before listening")
        })
        .await
        .context("the server did not start within 120 s")??;
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let server = Self {
            addr,
            child: Some(child),
            _dir: Some(dir),
        };
        server.wait_ready().await?;
        Ok(server)
    }

    /// A server that is already running elsewhere.
    pub async fn existing(url: &str) -> anyhow::Result<Self> {
        let host = url.trim_start_matches("http://").trim_end_matches('/');
        let addr = tokio::net::lookup_host(host)
            .await?
            .next()
            .context("cannot resolve the URL")?;
        let server = Self {
            addr,
            child: None,
            _dir: None,
        };
        server.wait_ready().await?;
        Ok(server)
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        for _ in 0..200 {
            if let Ok((200, _)) = fetch(self.addr, Shot::get("/readyz")).await {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("the server at {} never became ready", self.addr)
    }

    /// Stops the server; hands back its data directory (deleted when dropped).
    /// The data directory of a started server (empty for a server running elsewhere).
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir
            .as_ref()
            .map_or(std::path::Path::new(""), |d| d.path())
    }

    pub async fn stop(mut self) -> Option<tempfile::TempDir> {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
        self._dir.take()
    }
}
