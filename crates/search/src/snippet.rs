//! Highlighting: the matched words of a text wrapped in `<em>`, the rest HTML-escaped, and
//! for long texts a window around the first match.

use std::collections::HashSet;

use tantivy::tokenizer::TextAnalyzer;

/// `text` with every token whose term is in `terms` wrapped in `<em>…</em>`, cut to about
/// `max_chars` characters around the first match (whole text when `max_chars` is 0).
pub fn highlight(
    analyzer: &mut TextAnalyzer,
    text: &str,
    terms: &HashSet<String>,
    max_chars: usize,
) -> String {
    let mut spans: Vec<(usize, usize)> = Vec::new();
    if !terms.is_empty() {
        // Past this byte nothing can be shown: the window ends at most `max_chars`
        // characters (of at most 4 bytes) after the first match.
        let mut shown_until = usize::MAX;
        let mut stream = analyzer.token_stream(text);
        while stream.advance() {
            let t = stream.token();
            if t.offset_from > shown_until {
                break;
            }
            if terms.contains(&t.text) {
                if spans.is_empty() && max_chars > 0 {
                    shown_until = t.offset_from.saturating_add(4 * max_chars);
                }
                spans.push((t.offset_from, t.offset_to));
            }
        }
    }
    let (start, end) = window(text, spans.first().map(|s| s.0), max_chars);
    let mut out = String::with_capacity(end - start + 16);
    if start > 0 {
        out.push('…');
    }
    let mut at = start;
    for (from, to) in spans {
        if from < at || to > end {
            continue;
        }
        escape_into(&text[at..from], &mut out);
        out.push_str("<em>");
        escape_into(&text[from..to], &mut out);
        out.push_str("</em>");
        at = to;
    }
    escape_into(&text[at..end], &mut out);
    if end < text.len() {
        out.push('…');
    }
    out
}

/// Byte range of the shown part: starts a little before the first match, on char and word
/// boundaries.
fn window(text: &str, first: Option<usize>, max_chars: usize) -> (usize, usize) {
    if max_chars == 0 || text.chars().count() <= max_chars {
        return (0, text.len());
    }
    let lead = max_chars / 4;
    let anchor = first.unwrap_or(0);
    let mut start = text[..anchor]
        .char_indices()
        .rev()
        .nth(lead)
        .map_or(0, |(i, _)| i);
    if start > 0
        && let Some(space) = text[start..anchor].find(' ')
    {
        start += space + 1;
    }
    let end = text[start..]
        .char_indices()
        .nth(max_chars)
        .map_or(text.len(), |(i, _)| start + i);
    let end = match text[start..end].rfind(' ') {
        Some(space) if end < text.len() && space > 0 => start + space,
        _ => end,
    };
    (start, end)
}

fn escape_into(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{Lang, language};

    #[test]
    fn matched_stems_are_wrapped_and_markup_escaped() {
        let terms: HashSet<String> = ["candl".to_owned()].into();
        let html = highlight(
            &mut language(Lang::En),
            "<b>Candles</b> & holders",
            &terms,
            0,
        );
        assert_eq!(html, "&lt;b&gt;<em>Candles</em>&lt;/b&gt; &amp; holders");
    }

    #[test]
    fn long_texts_show_a_window_around_the_first_match() {
        let text = format!(
            "{} the red lantern glows {}",
            "word ".repeat(100),
            "more ".repeat(100)
        );
        let terms: HashSet<String> = ["lantern".to_owned()].into();
        let html = highlight(&mut language(Lang::En), &text, &terms, 60);
        assert!(html.contains("<em>lantern</em>"), "{html}");
        assert!(html.starts_with('…') && html.ends_with('…'), "{html}");
        assert!(html.chars().count() < 90, "{html}");
    }

    #[test]
    fn every_match_inside_the_window_is_marked_and_none_past_it() {
        let text = format!(
            "lantern {}lantern {}lantern",
            "word ".repeat(10),
            "word ".repeat(500)
        );
        let terms: HashSet<String> = ["lantern".to_owned()].into();
        let html = highlight(&mut language(Lang::En), &text, &terms, 160);
        assert_eq!(html.matches("<em>lantern</em>").count(), 2, "{html}");
        assert!(html.ends_with('…'), "{html}");
    }
}
