//! Citus-ready conventions, checked on the migrations of both backends: tables that grow
//! with customers carry the user id in every primary and unique key.

use std::collections::BTreeMap;

/// Tables that grow with customers, and their distribution column.
const CUSTOMER_TABLES: &[(&str, &str)] = &[
    ("users", "id"),
    ("addresses", "user_id"),
    ("sessions", "user_id"),
    ("outbox", "user_id"),
    ("reservations", "user_id"),
    ("reservation_lines", "user_id"),
    ("reservation_holds", "user_id"),
    ("flash_sale_purchases", "user_id"),
    ("carts", "user_id"),
    ("cart_items", "user_id"),
    ("coupon_customer_uses", "user_id"),
    ("orders", "user_id"),
    ("order_lines", "user_id"),
    ("fulfilments", "user_id"),
    ("payments", "user_id"),
    ("payment_events", "user_id"),
    ("refunds", "user_id"),
    ("returns", "user_id"),
    ("idempotency_keys", "user_id"),
];

/// Every key (primary, unique constraint, unique index) of every table: table → keys.
fn keys(sql: &str) -> BTreeMap<String, Vec<Vec<String>>> {
    let sql = sql
        .lines()
        .map(|l| l.split("--").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
        .to_lowercase();
    let columns = |s: &str| -> Vec<String> {
        let inner = s.split_once('(').map(|(_, r)| r).unwrap_or_default();
        let inner = inner.split(')').next().unwrap_or_default();
        inner
            .split(',')
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty())
            .collect()
    };
    let mut out: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
    for statement in sql.split(';') {
        let statement = statement.trim();
        if let Some(rest) = statement.strip_prefix("create table ") {
            let table = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
            let body = rest.split_once('(').map(|(_, b)| b).unwrap_or_default();
            let keys = out.entry(table).or_default();
            for line in body.lines().map(str::trim) {
                if let Some(pos) = line.find("primary key").or_else(|| line.find("unique (")) {
                    let key = &line[pos..];
                    if key.contains('(') {
                        keys.push(columns(key));
                    } else {
                        // An inline `column TYPE PRIMARY KEY`.
                        keys.push(vec![
                            line.split_whitespace()
                                .next()
                                .unwrap_or_default()
                                .to_owned(),
                        ]);
                    }
                } else if line.contains(" unique") && !line.starts_with("constraint") {
                    keys.push(vec![
                        line.split_whitespace()
                            .next()
                            .unwrap_or_default()
                            .to_owned(),
                    ]);
                }
            }
        } else if statement.starts_with("create unique index") {
            let table = statement
                .split(" on ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .unwrap_or_default();
            out.entry(table.to_owned())
                .or_default()
                .push(columns(statement.split(" on ").nth(1).unwrap_or_default()));
        }
    }
    out
}

fn migrations(backend: &str) -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../migrations")
        .join(backend);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn customer_tables_carry_the_user_id_in_every_key() {
    for backend in ["sqlite", "postgres"] {
        let found = keys(&migrations(backend));
        for (table, column) in CUSTOMER_TABLES {
            let table_keys = found
                .get(*table)
                .unwrap_or_else(|| panic!("{backend}: no table {table}"));
            assert!(
                !table_keys.is_empty(),
                "{backend}: {table} has no primary key"
            );
            for key in table_keys {
                assert!(
                    key.iter().any(|c| c == column),
                    "{backend}: a key of {table} lacks {column}: {key:?}"
                );
            }
        }
    }
}

#[test]
fn the_rule_checker_catches_a_key_without_the_user_id() {
    let bad = "CREATE TABLE sessions (\n user_id UUID NOT NULL,\n id UUID NOT NULL,\n token TEXT NOT NULL,\n CONSTRAINT sessions_pkey PRIMARY KEY (user_id, id),\n CONSTRAINT sessions_token_key UNIQUE (token)\n);";
    let found = keys(bad);
    assert!(
        found["sessions"]
            .iter()
            .any(|k| !k.contains(&"user_id".to_owned()))
    );
    let inline = keys("CREATE TABLE addresses (\n id UUID PRIMARY KEY,\n user_id UUID\n);");
    assert_eq!(inline["addresses"], vec![vec!["id".to_owned()]]);
    let index = keys("CREATE UNIQUE INDEX x ON outbox (topic);");
    assert_eq!(index["outbox"], vec![vec!["topic".to_owned()]]);
}

#[test]
fn both_backends_define_the_same_tables() {
    let sqlite: Vec<String> = keys(&migrations("sqlite")).into_keys().collect();
    let postgres: Vec<String> = keys(&migrations("postgres")).into_keys().collect();
    assert_eq!(sqlite, postgres);
}

#[test]
fn ids_are_generated_by_the_application() {
    for backend in ["sqlite", "postgres"] {
        let sql = migrations(backend).to_lowercase();
        for forbidden in [
            "serial",
            "autoincrement",
            "gen_random_uuid",
            "uuid_generate",
            "identity",
        ] {
            assert!(
                !sql.contains(forbidden),
                "{backend} migrations use {forbidden}"
            );
        }
    }
}
