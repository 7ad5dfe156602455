//! Queued writes: several statements in one round trip on SQLite, one by one on PostgreSQL,
//! with each statement's own parameters, counts per statement, and the whole of them undone
//! with the transaction.

use emporium_store::outbox::{self, EventRow, Json};
use emporium_store::{StoreError, Writes, values};

use crate::on_both_databases;

fn event(user: uuid::Uuid, n: i64, at: chrono::DateTime<chrono::Utc>) -> EventRow {
    EventRow {
        user_id: user,
        id: uuid::Uuid::now_v7(),
        topic: "test.writes".into(),
        payload: Json(serde_json::json!({ "n": n })),
        created_at: at,
        attempts: 0,
    }
}

on_both_databases! {
    async fn queued_writes_keep_their_parameters_and_report_each_count(app) {
        let users = app.bulk_users(2).await;
        let now = app.shop.now();
        let before = outbox::count_pending(&app.shop.db).await.unwrap();

        let mut tx = app.shop.db.begin().await.unwrap();
        let mut w = Writes::new();
        for n in 0..3 {
            outbox::queue_insert(&mut w, &event(users[n as usize % 2].0, n, now));
        }
        assert_eq!(w.run(&mut tx).await.unwrap(), vec![1, 1, 1]);
        // Statements whose parameters are numbered from $1 again, after others'; they must
        // not depend on each other (they see the rows written by earlier runs).
        let mut w = Writes::new();
        let other = EventRow { topic: "test.writes.other".into(), ..event(users[0].0, 3, now) };
        outbox::queue_insert(&mut w, &other);
        let touched = w.push(
            "UPDATE outbox SET attempts = $2 WHERE topic = $1",
            values!["test.writes", 7i32],
        );
        let missing = w.push(
            "UPDATE outbox SET attempts = 1 WHERE topic = $1",
            values!["no.such.topic"],
        );
        let counts = w.run(&mut tx).await.unwrap();
        assert_eq!(counts, vec![1, 3, 0]);
        assert_eq!((counts[touched], counts[missing]), (3, 0));
        tx.commit().await.unwrap();
        assert_eq!(outbox::count_pending(&app.shop.db).await.unwrap(), before + 4);
        let events = outbox::pending(&app.shop.db, 1000).await.unwrap();
        let mine: Vec<_> = events.iter().filter(|e| e.topic.starts_with("test.writes")).collect();
        assert_eq!(mine.len(), 4);
        let mut seen: Vec<(i64, i32)> = mine.iter().map(|e| (e.payload.0["n"].as_i64().unwrap(), e.attempts)).collect();
        seen.sort_unstable();
        assert_eq!(seen, vec![(0, 7), (1, 7), (2, 7), (3, 0)]);
    }

    async fn an_unexpected_count_fails_and_nothing_of_the_transaction_stays(app) {
        let users = app.bulk_users(1).await;
        let now = app.shop.now();
        let before = outbox::count_pending(&app.shop.db).await.unwrap();

        let mut tx = app.shop.db.begin().await.unwrap();
        let mut w = Writes::new();
        outbox::queue_insert(&mut w, &event(users[0].0, 1, now));
        w.push_expect(
            1,
            "an event of another topic",
            "UPDATE outbox SET attempts = 2 WHERE topic = $1",
            values!["no.such.topic"],
        );
        let err = w.run(&mut tx).await.unwrap_err();
        assert!(matches!(err, StoreError::Unexpected(_)), "{err:?}");
        drop(tx);
        assert_eq!(outbox::count_pending(&app.shop.db).await.unwrap(), before);

        // A failing statement (a broken key) takes the ones before it along.
        let mut tx = app.shop.db.begin().await.unwrap();
        let row = event(users[0].0, 2, now);
        let mut w = Writes::new();
        outbox::queue_insert(&mut w, &row);
        outbox::queue_insert(&mut w, &row);
        assert!(w.run(&mut tx).await.is_err());
        drop(tx);
        assert_eq!(outbox::count_pending(&app.shop.db).await.unwrap(), before);
    }
}
