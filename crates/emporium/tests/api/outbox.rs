//! The dispatcher delivers outbox rows once each, many per statement.

use emporium_store::outbox::{self, EventRow, Json};
use emporium_worker::{Dispatcher, Outcome};

use crate::on_both_databases;

on_both_databases! {
    async fn the_dispatcher_marks_every_pending_event_delivered_once(app) {
        let users = app.bulk_users(3).await;
        let now = app.shop.now();
        let mut tx = app.shop.db.begin().await.unwrap();
        // More than one statement's worth (100 per statement), from several users.
        for i in 0..250 {
            let row = EventRow {
                user_id: users[i % users.len()].0,
                id: uuid::Uuid::now_v7(),
                topic: "test.event".into(),
                payload: Json(serde_json::json!({ "n": i })),
                created_at: now,
                attempts: 0,
            };
            outbox::insert(&mut tx, &row).await.unwrap();
        }
        tx.commit().await.unwrap();
        let before = outbox::count_pending(&app.shop.db).await.unwrap();
        assert!(before >= 250, "{before} pending");

        let dispatcher = Dispatcher::new(app.shop.clone());
        let mut delivered = 0;
        while let Outcome::Worked(n) = dispatcher.run_once().await.unwrap() {
            delivered += n;
        }
        assert_eq!(delivered as i64, before);
        assert_eq!(outbox::count_pending(&app.shop.db).await.unwrap(), 0);
        assert_eq!(dispatcher.run_once().await.unwrap(), Outcome::Idle);
    }
}
