//! A small HTTP/1.1 load generator: N keep-alive connections, each sending its next request
//! as soon as the previous answer is read, for a fixed time. Latencies are kept per request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::Uri;
use hyper::header::HeaderValue;
use hyper_util::rt::TokioIo;

/// What a request of the load looks like. Its parts are ready to send (a parsed URI, a
/// finished `Authorization` value), so that the generator, which shares the machine with
/// the server it measures, spends as little as it can per request.
#[derive(Debug, Clone)]
pub struct Shot {
    pub method: hyper::Method,
    pub uri: Uri,
    pub body: Option<Bytes>,
    /// The whole `Authorization` header value (see [`bearer`]).
    pub bearer: Option<HeaderValue>,
}

impl Shot {
    /// A GET of `path`; a path that is not a valid URI gets `/` (the bench's own paths are).
    pub fn get(path: &str) -> Self {
        Self {
            method: hyper::Method::GET,
            uri: Uri::try_from(path).unwrap_or_default(),
            body: None,
            bearer: None,
        }
    }
}

/// The `Authorization` value for a bearer token.
pub fn bearer(token: &str) -> anyhow::Result<HeaderValue> {
    Ok(HeaderValue::try_from(format!("Bearer {token}"))?)
}

/// The outcome of one load run.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub elapsed: Duration,
    /// Count of responses by status code.
    pub statuses: std::collections::BTreeMap<u16, u64>,
    /// Transport errors (connection refused or reset, ...).
    pub errors: u64,
    /// Per-request latency in microseconds, sorted.
    pub latencies_us: Vec<u32>,
    /// The first answer body of each status of 400 and above, for diagnosis.
    pub samples: std::collections::BTreeMap<u16, String>,
    /// Count of answers of 400 and above by their problem `code` (`-` when the body has
    /// none), so that a bench tells `sold_out` from `purchase_limit_exceeded`.
    pub codes: std::collections::BTreeMap<String, u64>,
}

impl LoadReport {
    pub fn responses(&self) -> u64 {
        self.statuses.values().sum()
    }

    /// One report of several runs (rounds of the same phase): counts and latencies of all,
    /// and their time added up.
    pub fn merged(runs: Vec<LoadReport>) -> LoadReport {
        let mut report = LoadReport::default();
        for run in runs {
            report.absorb(run);
        }
        report.latencies_us.sort_unstable();
        report
    }

    /// Adds `part`'s answers, latencies (unsorted) and time to this report.
    fn absorb(&mut self, part: LoadReport) {
        self.elapsed += part.elapsed;
        self.errors += part.errors;
        for (status, n) in part.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
        self.latencies_us.extend(part.latencies_us);
        for (status, body) in part.samples {
            self.samples.entry(status).or_insert(body);
        }
        for (code, n) in part.codes {
            *self.codes.entry(code).or_default() += n;
        }
    }

    /// Answers whose problem `code` was `code`.
    pub fn code_count(&self, code: &str) -> u64 {
        self.codes.get(code).copied().unwrap_or(0)
    }

    pub fn per_sec(&self) -> f64 {
        self.responses() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The latency below which `q` (0..1) of requests finished, in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies_us.len() as f64 - 1.0) * q).round() as usize;
        f64::from(self.latencies_us[i.min(self.latencies_us.len() - 1)]) / 1000.0
    }
}

const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Drives `connections` keep-alive connections for `duration`; `shots(conn, i)` gives the
/// i-th request of connection `conn`.
pub async fn run<F>(
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    shots: F,
) -> anyhow::Result<LoadReport>
where
    F: Fn(usize, u64) -> Shot + Send + Sync + 'static,
{
    let shots = Arc::new(shots);
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::with_capacity(connections);
    for conn in 0..connections {
        let shots = shots.clone();
        tasks.push(tokio::spawn(async move {
            drive(addr, conn, deadline, shots.as_ref()).await
        }));
    }
    let mut report = LoadReport::default();
    for task in tasks {
        report.absorb(task.await.context("a load task panicked")?);
    }
    report.elapsed = start.elapsed();
    report.latencies_us.sort_unstable();
    Ok(report)
}

async fn drive(
    addr: SocketAddr,
    conn: usize,
    deadline: Instant,
    shots: &(dyn Fn(usize, u64) -> Shot + Send + Sync),
) -> LoadReport {
    let mut report = LoadReport::default();
    let mut i = 0u64;
    let Ok(host) = HeaderValue::try_from(addr.to_string()) else {
        report.errors += 1;
        return report;
    };
    while Instant::now() < deadline {
        let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
            report.errors += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let Ok((mut sender, connection)) =
            hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await
        else {
            report.errors += 1;
            continue;
        };
        tokio::spawn(connection);
        while Instant::now() < deadline {
            let shot = shots(conn, i);
            i += 1;
            let mut builder = Request::builder()
                .method(shot.method)
                .uri(shot.uri)
                .header(hyper::header::HOST, host.clone());
            if let Some(value) = shot.bearer {
                builder = builder.header(hyper::header::AUTHORIZATION, value);
            }
            if shot.body.is_some() {
                builder = builder.header(hyper::header::CONTENT_TYPE, JSON.clone());
            }
            let Ok(request) = builder.body(Full::new(shot.body.unwrap_or_default())) else {
                report.errors += 1;
                continue;
            };
            let sent = Instant::now();
            if sender.ready().await.is_err() {
                report.errors += 1;
                break;
            }
            match sender.send_request(request).await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let Ok(body) = response.into_body().collect().await else {
                        report.errors += 1;
                        break;
                    };
                    if status >= 400 {
                        let body = body.to_bytes();
                        count_code(&mut report.codes, &body);
                        report
                            .samples
                            .entry(status)
                            .or_insert_with(|| String::from_utf8_lossy(&body).into_owned());
                    }
                    let us = u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX);
                    report.latencies_us.push(us);
                    *report.statuses.entry(status).or_default() += 1;
                }
                Err(_) => {
                    report.errors += 1;
                    break;
                }
            }
        }
    }
    report
}

/// Counts the problem `code` of an error answer's body. The bodies are the server's own
/// problem documents, whose `code` is a plain snake_case string: a search for its key is
/// enough, and cheaper than parsing JSON on the machine being measured.
fn count_code(codes: &mut std::collections::BTreeMap<String, u64>, body: &[u8]) {
    const KEY: &[u8] = br#""code":""#;
    let code = body
        .windows(KEY.len())
        .position(|w| w == KEY)
        .map(|at| &body[at + KEY.len()..])
        .and_then(|rest| rest.iter().position(|b| *b == b'"').map(|end| &rest[..end]))
        .and_then(|code| std::str::from_utf8(code).ok())
        .unwrap_or("-");
    match codes.get_mut(code) {
        Some(n) => *n += 1,
        None => {
            codes.insert(code.to_owned(), 1);
        }
    }
}

/// One request outside a load run: (status, body).
pub async fn fetch(addr: SocketAddr, shot: Shot) -> anyhow::Result<(u16, Bytes)> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let mut builder = Request::builder()
        .method(shot.method)
        .uri(shot.uri)
        .header(hyper::header::HOST, addr.to_string())
        .header(hyper::header::CONTENT_TYPE, JSON.clone());
    if let Some(value) = shot.bearer {
        builder = builder.header(hyper::header::AUTHORIZATION, value);
    }
    let response = sender
        .send_request(builder.body(Full::new(shot.body.unwrap_or_default()))?)
        .await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_answers_are_counted_by_their_problem_code() {
        let mut codes = std::collections::BTreeMap::new();
        count_code(
            &mut codes,
            br#"{"type":"about:blank","code":"sold_out","status":409}"#,
        );
        count_code(&mut codes, br#"{"code":"sold_out"}"#);
        count_code(
            &mut codes,
            br#"{"code":"purchase_limit_exceeded","limit":1}"#,
        );
        count_code(&mut codes, b"not a problem document");
        count_code(&mut codes, br#"{"code":"unterminated"#);
        let got: Vec<(&str, u64)> = codes.iter().map(|(c, n)| (c.as_str(), *n)).collect();
        assert_eq!(
            got,
            [("-", 2), ("purchase_limit_exceeded", 1), ("sold_out", 2)]
        );
    }
}
