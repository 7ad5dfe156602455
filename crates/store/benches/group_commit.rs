//! Group commit against one COMMIT per transaction, on a real SQLite file with
//! `synchronous=FULL`: `WRITERS` concurrent tasks each write one outbox row in a transaction
//! of their own. One iteration is the time until all of them are durable.
//!
//! ```sh
//! cargo bench -p emporium-store --bench group_commit
//! ```

use std::sync::Arc;

use chrono::Utc;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use emporium_store::outbox::{self, EventRow, Json};
use emporium_store::{Db, DbConfig, Tx};
use uuid::Uuid;

const WRITERS: usize = 64;

async fn write_one(db: &Db, solo: bool) {
    let tx: Result<Tx, _> = if solo {
        db.begin_solo().await
    } else {
        db.begin().await
    };
    let Ok(mut tx) = tx else {
        panic!("begin failed");
    };
    let row = EventRow {
        user_id: Uuid::nil(),
        id: Uuid::now_v7(),
        topic: "bench.write".into(),
        payload: Json(serde_json::json!({ "n": 1 })),
        created_at: Utc::now(),
        attempts: 0,
    };
    if outbox::insert(&mut tx, &row).await.is_err() || tx.commit().await.is_err() {
        panic!("write failed");
    }
}

async fn round(db: &Arc<Db>, solo: bool) {
    let tasks: Vec<_> = (0..WRITERS)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move { write_one(&db, solo).await })
        })
        .collect();
    for task in tasks {
        if task.await.is_err() {
            panic!("a writer panicked");
        }
    }
}

fn commits(c: &mut Criterion) {
    let Ok(runtime) = tokio::runtime::Runtime::new() else {
        panic!("no runtime");
    };
    let Ok(dir) = tempfile::tempdir() else {
        panic!("no temporary directory");
    };
    let db = runtime.block_on(async {
        let db = Db::connect(&DbConfig::sqlite_in(dir.path())).await?;
        db.migrate().await?;
        Ok::<_, emporium_store::StoreError>(Arc::new(db))
    });
    let Ok(db) = db else {
        panic!("no database");
    };
    let mut group = c.benchmark_group("sqlite_commits");
    group.throughput(Throughput::Elements(WRITERS as u64));
    group.sample_size(20);
    for (name, solo) in [("group", false), ("solo", true)] {
        group.bench_with_input(BenchmarkId::new(name, WRITERS), &solo, |b, &solo| {
            b.to_async(&runtime).iter(|| round(&db, solo));
        });
    }
    group.finish();
}

criterion_group!(benches, commits);
criterion_main!(benches);
