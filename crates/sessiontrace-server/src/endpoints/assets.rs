//! Files for browsers: the recorder bundle at `/recorder.js` and the web UI at every other path the API
//! does not own, with `index.html` for client-side routes. Both are built by npm and embedded in the
//! binary at build time (build.rs copies `ui/dist` and `recorder/dist/recorder.js` with brotli and gzip
//! copies beside each text file), so the binary alone serves them: content type from the name, a strong
//! `ETag` (`If-None-Match` → 304), `Cache-Control` (hashed files under `assets/` immutable for a year,
//! everything else `no-cache`), and the pre-compressed copy the client accepts. `--ui-dir` and
//! `--recorder-js` serve files from disk instead, for UI development.

use std::borrow::Cow;
use std::path::Path;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use tower_http::services::{ServeDir, ServeFile};

use crate::state::AppState;

/// The browser files made by build.rs: `ui/…` (the UI's `dist`) and `recorder/recorder.js`, each text
/// file with `.br` and `.gz` copies.
#[derive(rust_embed::Embed)]
#[folder = "$OUT_DIR/web/"]
struct Web;

/// `built`, or `placeholder` when the binary was built with `SESSIONTRACE_SKIP_UI=1`.
const EMBEDDED_UI: &str = env!("SESSIONTRACE_EMBEDDED_UI");

/// `Cache-Control` of content-hashed files: their name changes with their content.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of files whose name stays (index.html, recorder.js): revalidate with the ETag each time.
const REVALIDATE: &str = "no-cache";

/// Whether the binary carries the real UI (not the `SESSIONTRACE_SKIP_UI=1` placeholder).
pub fn ui_embedded() -> bool {
    EMBEDDED_UI == "built"
}

/// `/recorder.js` and the UI: embedded, or from `ui_dir` / `recorder_js` on disk when given.
pub fn routes(ui_dir: Option<&Path>, recorder_js: Option<&Path>) -> Router<AppState> {
    let router = match recorder_js {
        Some(path) => Router::new().route_service("/recorder.js", ServeFile::new(path)),
        None => Router::new()
            .route("/recorder.js", get(|headers: HeaderMap| async move { serve("recorder/recorder.js", &headers) })),
    };
    match ui_dir {
        Some(dir) => {
            // Client routes fall back to index.html; a missing bundle file is a plain 404, so a cached
            // page that names an old bundle fails clearly.
            let index = dir.join("index.html");
            router
                .nest_service("/assets", ServeDir::new(dir.join("assets")))
                .fallback_service(ServeDir::new(dir).fallback(ServeFile::new(index)))
        }
        None => router.fallback(embedded_ui),
    }
}

/// Any path no route owns: the embedded file of that name, else (client routes) index.html; a missing
/// file under `assets/` is a 404, as with `--ui-dir`.
async fn embedded_ui(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "GET, HEAD")]).into_response();
    }
    let path = uri.path().trim_start_matches('/');
    let name = if path.is_empty() { "ui/index.html".to_owned() } else { format!("ui/{path}") };
    if Web::get(&name).is_some() {
        return serve(&name, &headers);
    }
    if path.starts_with("assets/") {
        return StatusCode::NOT_FOUND.into_response();
    }
    serve("ui/index.html", &headers)
}

/// One embedded file as the request's headers ask for it.
fn serve(name: &str, headers: &HeaderMap) -> Response {
    let Some(file) = Web::get(name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let content_type = match file.metadata.mimetype() {
        text if text.starts_with("text/") && !text.contains("charset") => format!("{text}; charset=utf-8"),
        other => other.to_owned(),
    };
    let cache_control = if name.starts_with("ui/assets/") { IMMUTABLE } else { REVALIDATE };
    let hash = hex::encode(&file.metadata.sha256_hash()[..12]);
    let accepted = headers.get(header::ACCEPT_ENCODING).and_then(|value| value.to_str().ok()).unwrap_or("");
    let compressed = [Encoding::Brotli, Encoding::Gzip]
        .into_iter()
        .filter(|encoding| accepts(accepted, encoding.token()))
        .find_map(|encoding| Web::get(&format!("{name}.{}", encoding.suffix())).map(|copy| (encoding, copy.data)));
    let (encoding, data) = match compressed {
        Some((encoding, data)) => (Some(encoding), data),
        None => (None, file.data),
    };
    let etag = match encoding {
        Some(encoding) => format!("\"{hash}-{}\"", encoding.suffix()),
        None => format!("\"{hash}\""),
    };
    let mut response = if if_none_match(headers, &hash) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = Response::new(body(data));
        response.headers_mut().insert(header::CONTENT_TYPE, header_value(&content_type));
        if let Some(encoding) = encoding {
            response.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding.token()));
        }
        response
    };
    let response_headers = response.headers_mut();
    response_headers.insert(header::ETAG, header_value(&etag));
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache_control));
    response_headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
    response
}

fn body(data: Cow<'static, [u8]>) -> Body {
    match data {
        Cow::Borrowed(bytes) => Body::from(Bytes::from_static(bytes)),
        Cow::Owned(bytes) => Body::from(bytes),
    }
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"))
}

/// A pre-compressed copy's encoding.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Encoding {
    Brotli,
    Gzip,
}

impl Encoding {
    /// The `Content-Encoding` token.
    fn token(self) -> &'static str {
        match self {
            Encoding::Brotli => "br",
            Encoding::Gzip => "gzip",
        }
    }

    /// The suffix of the copy's file name (and of its ETag).
    fn suffix(self) -> &'static str {
        match self {
            Encoding::Brotli => "br",
            Encoding::Gzip => "gz",
        }
    }
}

/// Whether an `Accept-Encoding` value accepts `token` (by name or `*`, with a q-value above 0).
fn accepts(accept_encoding: &str, token: &str) -> bool {
    let mut named = None;
    let mut wildcard = None;
    for item in accept_encoding.split(',') {
        let mut parts = item.split(';').map(str::trim);
        let coding = parts.next().unwrap_or("");
        let quality = parts
            .find_map(|parameter| parameter.strip_prefix("q=").or_else(|| parameter.strip_prefix("Q=")))
            .map_or(1.0, |q| q.trim().parse::<f32>().unwrap_or(0.0));
        if coding.eq_ignore_ascii_case(token) {
            named = Some(quality);
        } else if coding == "*" {
            wildcard = Some(quality);
        }
    }
    named.or(wildcard).is_some_and(|quality| quality > 0.0)
}

/// Whether `If-None-Match` names any representation of the file with this content hash (`*` included).
fn if_none_match(headers: &HeaderMap, hash: &str) -> bool {
    headers.get_all(header::IF_NONE_MATCH).iter().filter_map(|value| value.to_str().ok()).any(|value| {
        value.split(',').map(str::trim).any(|tag| {
            let tag = tag.strip_prefix("W/").unwrap_or(tag).trim_matches('"');
            tag == "*" || tag == hash || tag.strip_prefix(hash).is_some_and(|rest| rest == "-br" || rest == "-gz")
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_encoding_values() {
        assert!(accepts("gzip, deflate, br, zstd", "br"));
        assert!(accepts("gzip, deflate, br, zstd", "gzip"));
        assert!(!accepts("gzip", "br"));
        assert!(!accepts("br;q=0, gzip;q=0.5", "br"));
        assert!(accepts("br;q=0, gzip;q=0.5", "gzip"));
        assert!(accepts("*", "br"));
        assert!(!accepts("*;q=0", "gzip"));
        assert!(!accepts("gzip;q=0, *", "gzip"));
        assert!(!accepts("", "gzip"));
        assert!(!accepts("identity", "gzip"));
    }

    #[test]
    fn if_none_match_values() {
        let check = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::IF_NONE_MATCH, HeaderValue::from_str(value).unwrap());
            if_none_match(&headers, "abc")
        };
        assert!(check("\"abc\""));
        assert!(check("W/\"abc-br\""));
        assert!(check("\"x\", \"abc-gz\""));
        assert!(check("*"));
        assert!(!check("\"abcd\""));
        assert!(!check("\"abc-zz\""));
        assert!(!if_none_match(&HeaderMap::new(), "abc"));
    }

    #[test]
    fn the_embedded_files_are_there() {
        assert!(Web::get("ui/index.html").is_some());
        assert!(Web::get("recorder/recorder.js").is_some());
        if ui_embedded() {
            assert!(Web::iter().any(|name| name.starts_with("ui/assets/") && name.ends_with(".js")));
        }
    }
}
