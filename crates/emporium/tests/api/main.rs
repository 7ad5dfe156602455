//! Integration tests: the real router against a fresh database per test, on SQLite and, when
//! `EMPORIUM_TEST_DATABASE_URL` is set at build time, on PostgreSQL too.
#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod bad_input;
mod bench_running;
mod catalog;
mod checkout;
mod crash;
mod demo;
mod flash_sales;
mod health;
mod helpers;
mod idempotency;
mod idempotency_lifecycle;
mod identity;
mod inventory_properties;
mod openapi;
mod outbox;
mod process;
mod reservations;
mod schema_rules;
mod search;
mod search_input;
mod shapes;
mod stock;
mod writes;
