//! The catalog read cache: serialized responses with their ETags, keyed by request, valid
//! for one catalog version. A write moves the version, which makes every entry stale at once.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use parking_lot::RwLock;
use sha2::{Digest, Sha256};

/// Entries beyond this are dropped wholesale (the next reads refill the hot ones).
const MAX_ENTRIES: usize = 20_000;

/// One cached response body.
#[derive(Debug)]
pub struct Cached {
    pub body: Bytes,
    pub etag: HeaderValue,
    pub content_language: Option<HeaderValue>,
}

#[derive(Default)]
pub struct ReadCache {
    inner: RwLock<Entries>,
}

#[derive(Default)]
struct Entries {
    version: u64,
    map: HashMap<String, Arc<Cached>>,
}

impl ReadCache {
    pub fn get(&self, key: &str, version: u64) -> Option<Arc<Cached>> {
        let entries = self.inner.read();
        if entries.version != version {
            return None;
        }
        entries.map.get(key).cloned()
    }

    /// Stores a body built at `version` (read before building it, so a write during the
    /// build leaves the entry stale, never wrong).
    pub fn put(
        &self,
        key: String,
        version: u64,
        body: Vec<u8>,
        content_language: Option<&str>,
    ) -> Arc<Cached> {
        let digest = Sha256::digest(&body);
        let etag = format!("\"{}\"", hex::encode(&digest[..12]));
        let cached = Arc::new(Cached {
            body: Bytes::from(body),
            etag: HeaderValue::from_str(&etag)
                .unwrap_or_else(|_| HeaderValue::from_static("\"0\"")),
            content_language: content_language.and_then(|l| HeaderValue::from_str(l).ok()),
        });
        let mut entries = self.inner.write();
        if entries.version != version {
            if version < entries.version {
                return cached;
            }
            entries.version = version;
            entries.map.clear();
        }
        if entries.map.len() >= MAX_ENTRIES {
            entries.map.clear();
        }
        entries.map.insert(key, cached.clone());
        cached
    }
}

impl Cached {
    /// 304 when the client already has this body, else 200 with it.
    pub fn respond(&self, request: &HeaderMap) -> Response {
        let fresh = request
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|tags| {
                tags.split(',')
                    .map(|t| t.trim().trim_start_matches("W/"))
                    .any(|t| t == "*" || self.etag.to_str().is_ok_and(|e| e == t))
            });
        let mut response = if fresh {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            let mut r = self.body.clone().into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        };
        let headers = response.headers_mut();
        headers.insert(header::ETAG, self.etag.clone());
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=5, must-revalidate"),
        );
        headers.insert(header::VARY, HeaderValue::from_static("Accept-Language"));
        if let Some(lang) = &self.content_language {
            headers.insert(header::CONTENT_LANGUAGE, lang.clone());
        }
        response
    }
}
