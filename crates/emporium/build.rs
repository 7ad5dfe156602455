//! Compiles the PostgreSQL half of the integration tests only when a test database is
//! configured, so a run without one does not report PostgreSQL tests as passed.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(pg_tests)");
    println!("cargo::rerun-if-env-changed=EMPORIUM_TEST_DATABASE_URL");
    if std::env::var("EMPORIUM_TEST_DATABASE_URL").is_ok_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=pg_tests");
    }
}
