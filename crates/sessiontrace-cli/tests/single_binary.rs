//! The binary alone is the product: copied into an empty folder and started there, it serves the web UI
//! and the recorder embedded at build time (content types, ETag/304, Cache-Control, pre-compressed
//! copies, client routes), and `--version` names the version and the git commit.

mod support;

use std::io::Read;
use std::process::Command;

use reqwest::StatusCode;
use reqwest::blocking::{Client, Response};
use reqwest::header::{ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use support::{RunningServer, free_port};

fn header(response: &Response, name: reqwest::header::HeaderName) -> String {
    response.headers().get(&name).map(|value| value.to_str().unwrap().to_owned()).unwrap_or_default()
}

fn get(client: &Client, url: &str, accept_encoding: &str) -> Response {
    client.get(url).header(ACCEPT_ENCODING, accept_encoding).send().unwrap()
}

#[test]
fn the_binary_alone_serves_the_embedded_ui_and_recorder() {
    let folder = tempfile::tempdir().unwrap();
    let binary = folder.path().join("sessiontrace");
    std::fs::copy(env!("CARGO_BIN_EXE_sessiontrace"), &binary).unwrap();
    let data_dir = folder.path().join("data");
    let ports = (free_port(), free_port(), free_port());
    let server = RunningServer::start_program(&binary, Some(folder.path()), &data_dir, ports, &[], None);
    let client = Client::new();

    // The page.
    let index = get(&client, &format!("{}/", server.api), "identity");
    assert_eq!(index.status(), StatusCode::OK);
    assert_eq!(header(&index, CONTENT_TYPE), "text/html; charset=utf-8");
    assert_eq!(header(&index, CACHE_CONTROL), "no-cache");
    assert!(!header(&index, ETAG).is_empty());
    let page = index.text().unwrap();
    assert!(page.contains("<div id=\"app\">"), "not the built UI: {page}");

    // A client route is the same page.
    let route = get(&client, &format!("{}/sessions/abc", server.api), "identity");
    assert_eq!(route.status(), StatusCode::OK);
    assert_eq!(header(&route, CACHE_CONTROL), "no-cache");
    assert_eq!(route.text().unwrap(), page);

    // A content-hashed script the page names.
    let start = page.find("/assets/").expect("the page names its assets");
    let end = start + page[start..].find(".js").expect("a script under /assets/") + 3;
    let asset_url = format!("{}{}", server.api, &page[start..end]);
    let plain = get(&client, &asset_url, "identity");
    assert_eq!(plain.status(), StatusCode::OK);
    assert!(header(&plain, CONTENT_TYPE).contains("javascript"), "{}", header(&plain, CONTENT_TYPE));
    assert_eq!(header(&plain, CACHE_CONTROL), "public, max-age=31536000, immutable");
    assert_eq!(header(&plain, CONTENT_ENCODING), "");
    let etag = header(&plain, ETAG);
    let script = plain.bytes().unwrap();
    assert!(script.len() > 10_000);

    let revalidated = client.get(&asset_url).header(IF_NONE_MATCH, &etag).send().unwrap();
    assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
    assert!(revalidated.bytes().unwrap().is_empty());

    let gzipped = get(&client, &asset_url, "gzip, deflate");
    assert_eq!(gzipped.status(), StatusCode::OK);
    assert_eq!(header(&gzipped, CONTENT_ENCODING), "gzip");
    assert!(header(&gzipped, "vary".parse().unwrap()).to_ascii_lowercase().contains("accept-encoding"));
    let gzip_etag = header(&gzipped, ETAG);
    assert_ne!(gzip_etag, etag, "each encoding has its own ETag");
    let compressed = gzipped.bytes().unwrap();
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&compressed[..]).read_to_end(&mut unzipped).unwrap();
    assert_eq!(unzipped, script.to_vec());
    let gzip_revalidated =
        client.get(&asset_url).header(ACCEPT_ENCODING, "gzip").header(IF_NONE_MATCH, &gzip_etag).send().unwrap();
    assert_eq!(gzip_revalidated.status(), StatusCode::NOT_MODIFIED);

    let brotli = get(&client, &asset_url, "gzip, deflate, br");
    assert_eq!(header(&brotli, CONTENT_ENCODING), "br");
    assert!(brotli.bytes().unwrap().len() < compressed.len());

    // A bundle file that does not exist is a 404, not the page.
    let missing = get(&client, &format!("{}/assets/index-missing.js", server.api), "identity");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    // The recorder.
    let recorder = get(&client, &format!("{}/recorder.js", server.api), "identity");
    assert_eq!(recorder.status(), StatusCode::OK);
    assert!(header(&recorder, CONTENT_TYPE).contains("javascript"));
    assert_eq!(header(&recorder, CACHE_CONTROL), "no-cache");
    let recorder_etag = header(&recorder, ETAG);
    assert!(recorder.text().unwrap().contains("sessiontrace"));
    let recorder_revalidated =
        client.get(format!("{}/recorder.js", server.api)).header(IF_NONE_MATCH, &recorder_etag).send().unwrap();
    assert_eq!(recorder_revalidated.status(), StatusCode::NOT_MODIFIED);
}

#[test]
fn version_names_the_git_commit() {
    let output = Command::new(env!("CARGO_BIN_EXE_sessiontrace")).arg("--version").output().unwrap();
    assert!(output.status.success());
    let version = String::from_utf8(output.stdout).unwrap();
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map_or_else(|| "unknown".to_owned(), |output| String::from_utf8(output.stdout).unwrap().trim().to_owned());
    let expected = match std::env::var("SESSIONTRACE_GIT_COMMIT") {
        Ok(commit) if !commit.is_empty() => commit,
        _ => commit,
    };
    assert_eq!(version.trim(), format!("sessiontrace {} (commit {expected})", env!("CARGO_PKG_VERSION")));
}
