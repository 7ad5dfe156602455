//! `emporium bench flash-sale --url`: the bench drives a server it did not start, preparing
//! its sale and shoppers through that server's database, and its checks hold there.

use std::time::Duration;

use serde_json::Value;

use crate::crash::harness::Server;

/// Runs the bench against the server at `addr` whose database is `database`.
async fn bench_against(addr: &str, database: &str) -> Value {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_emporium"))
        .args(["bench", "flash-sale", "--json", "--seconds", "1"])
        .args([
            "--connections",
            "4",
            "--shoppers",
            "12000",
            "--sell-out-units",
            "20",
        ])
        .arg("--url")
        .arg(format!("http://{addr}"))
        .arg("--target-database-url")
        .arg(database)
        .env("RUST_LOG", "error")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("the bench did not finish in time")
        .expect("the bench could not start");
    assert!(
        out.status.success(),
        "the bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

fn assert_sound(report: &Value) {
    assert_eq!(report["design"], "running server", "{report}");
    assert!(report["granted"].as_u64().unwrap() > 0, "{report}");
    // The small sale sells out within the sold-out phase; its answers are told apart by code.
    assert!(report["sold_out"].as_u64().unwrap() > 0, "{report}");
    assert!(
        report["sold_out_per_sec"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    assert_eq!(report["oversold"], 0, "{report}");
    assert_eq!(report["stock_equation_ok"], true, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert!(
        report["ceiling_per_sec"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    // No baseline runs against a server the bench did not start.
    assert!(report.get("naive_ratio").is_none(), "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_flash_sale_bench_drives_a_running_sqlite_server_without_overselling() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None).await;
    let database = format!("sqlite://{}", dir.path().join("emporium.db").display());
    let report = bench_against(&server.addr, &database).await;
    assert_sound(&report);
    // The server still answers after the flood.
    let health = reqwest::get(format!("http://{}/healthz", server.addr))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    server.stop().await;
}

#[cfg(pg_tests)]
#[tokio::test(flavor = "multi_thread")]
async fn the_flash_sale_bench_drives_a_running_postgres_server_without_overselling() {
    let (url, _schema) = crate::crash::harness::fresh_schema().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), Some(&url)).await;
    let report = bench_against(&server.addr, &url).await;
    assert_sound(&report);
    server.stop().await;
}
