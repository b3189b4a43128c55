//! Files for browsers: the recorder bundle at `/recorder.js` and the built web UI at every other path,
//! with `index.html` for client-side routes. Both are built by npm (see README); when a build is missing
//! the server says how to make it instead of failing.

use std::path::{Path, PathBuf};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use tower_http::services::{ServeDir, ServeFile};

use crate::state::AppState;

/// Finds `relative` under the working directory or above the running binary (`target/<profile>/`).
pub fn locate(relative: &str) -> Option<PathBuf> {
    let mut candidates = vec![PathBuf::from(relative)];
    if let Ok(exe) = std::env::current_exe() {
        for ancestor in exe.ancestors().skip(1).take(4) {
            candidates.push(ancestor.join(relative));
        }
    }
    candidates.into_iter().find(|p| p.exists())
}

/// `/recorder.js` and the UI.
pub fn routes(ui_dir: Option<&Path>, recorder_js: Option<&Path>) -> Router<AppState> {
    let mut router = Router::new();
    router = match recorder_js {
        Some(path) => router.route_service("/recorder.js", ServeFile::new(path)),
        None => router.route(
            "/recorder.js",
            get(|| async {
                (
                    StatusCode::NOT_FOUND,
                    [(header::CONTENT_TYPE, "application/javascript")],
                    "console.error('sessiontrace: recorder bundle not built; run: npm --prefix recorder ci && npm --prefix recorder run build');",
                )
            }),
        ),
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
        None => router.fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                Html(
                    "<!doctype html><title>sessiontrace</title><h1>sessiontrace</h1>\
                     <p>The web UI is not built. Run <code>npm --prefix ui ci &amp;&amp; npm --prefix ui run build</code> \
                     (or the README's run command). The API is at <a href=\"/api/sessions\">/api/sessions</a>.</p>",
                ),
            )
                .into_response()
        }),
    }
}
