//! `cargo run --release -p emporium-search --example eval -- PATH`: the relevance evaluation
//! without building the whole binary (`emporium eval search` runs the same function).
#![expect(clippy::unwrap_used, reason = "a developer tool")]

fn main() {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "../shared/data/home_depot/train_utf8.csv".into());
    let data = emporium_search::eval::EvalData::read(std::path::Path::new(&path)).unwrap();
    let report = emporium_search::eval::run(&data).unwrap();
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}
