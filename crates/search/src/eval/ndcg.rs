//! NDCG@10: gain = relevance grade − 1 (0 to 2; unjudged products gain 0), discount
//! log2(rank + 1), ideal ranking from all judged products of the query.

use std::collections::HashMap;

use super::EvalData;

pub fn ndcg10(ranked: &[String], judged: &[(String, f64)]) -> f64 {
    let grades: HashMap<&str, f64> = judged.iter().map(|(id, g)| (id.as_str(), *g)).collect();
    let dcg: f64 = ranked
        .iter()
        .take(10)
        .enumerate()
        .map(|(i, id)| gain(grades.get(id.as_str()).copied()) / (i as f64 + 2.0).log2())
        .sum();
    let mut ideal: Vec<f64> = judged.iter().map(|(_, g)| gain(Some(*g))).collect();
    ideal.sort_by(|a, b| b.total_cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(10)
        .enumerate()
        .map(|(i, g)| g / (i as f64 + 2.0).log2())
        .sum();
    if idcg > 0.0 { dcg / idcg } else { 0.0 }
}

fn gain(grade: Option<f64>) -> f64 {
    grade.map_or(0.0, |g| (g - 1.0).max(0.0))
}

pub fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 { 0.0 } else { sum / n as f64 }
}

/// Judged results over all results in the top 10s.
pub fn judged_share(data: &EvalData, runs: &[Vec<String>]) -> f64 {
    let (mut judged, mut shown) = (0usize, 0usize);
    for (q, run) in data.queries.iter().zip(runs) {
        for id in run.iter().take(10) {
            shown += 1;
            if q.judged.iter().any(|(j, _)| j == id) {
                judged += 1;
            }
        }
    }
    if shown == 0 {
        0.0
    } else {
        judged as f64 / shown as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_ideal_order_scores_one_and_unjudged_results_score_nothing() {
        let judged = vec![
            ("a".to_owned(), 3.0),
            ("b".to_owned(), 2.0),
            ("c".to_owned(), 1.0),
        ];
        assert!((ndcg10(&ids(&["a", "b", "c"]), &judged) - 1.0).abs() < 1e-12);
        assert_eq!(ndcg10(&ids(&["x", "y"]), &judged), 0.0);
        let swapped = ndcg10(&ids(&["b", "a"]), &judged);
        let expected = (1.0 + 2.0 / 3f64.log2()) / (2.0 + 1.0 / 3f64.log2());
        assert!((swapped - expected).abs() < 1e-12);
    }
}
