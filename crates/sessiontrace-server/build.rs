//! Build script: puts the browser files into the binary. The web UI (`ui/dist`) and the recorder bundle
//! (`recorder/dist/recorder.js`) are copied into `$OUT_DIR/web/{ui,recorder}`, each text file with a
//! brotli (`.br`, quality 11) and a gzip (`.gz`, level 9) copy beside it when that is smaller, and
//! `endpoints::assets` embeds that folder with rust-embed. Compressing here, once, lets the server answer
//! `Accept-Encoding` with the best ratio and no CPU per request.
//!
//! A missing build is never embedded silently: when `ui/dist` or `recorder/dist` is missing this script
//! runs the npm builds (`npm ci` when `node_modules` is missing, then `npm run build`), and when that is
//! impossible it fails with the command to run. `SESSIONTRACE_SKIP_UI=1` embeds a page that says the UI
//! was not built instead (Rust-only work), and the server warns about it at start.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

/// Extensions of files worth compressing (everything else, e.g. images and fonts, is served as is).
const COMPRESSIBLE: &[&str] = &["html", "js", "mjs", "css", "svg", "json", "txt", "xml", "wasm"];

/// The command that builds both bundles, printed when this script cannot run it.
const BUILD_COMMAND: &str = "(cd recorder && npm ci && npm run build) && (cd ui && npm ci && npm run build)";

/// One npm project whose build output is embedded.
struct Bundle {
    /// Folder of the project, relative to the workspace root.
    project: &'static str,
    /// The file whose presence means the project was built, relative to the project.
    marker: &'static str,
}

const UI: Bundle = Bundle { project: "ui", marker: "dist/index.html" };
const RECORDER: Bundle = Bundle { project: "recorder", marker: "dist/recorder.js" };

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let root = manifest_dir.join("../..");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("web");
    println!("cargo:rerun-if-env-changed=SESSIONTRACE_SKIP_UI");
    println!("cargo:rerun-if-changed=build.rs");
    if out.exists() {
        fs::remove_dir_all(&out).expect("clear $OUT_DIR/web");
    }
    fs::create_dir_all(out.join("ui")).expect("create $OUT_DIR/web/ui");
    fs::create_dir_all(out.join("recorder")).expect("create $OUT_DIR/web/recorder");

    if std::env::var("SESSIONTRACE_SKIP_UI").is_ok_and(|value| !value.is_empty() && value != "0") {
        println!("cargo:warning=SESSIONTRACE_SKIP_UI is set: the binary serves a placeholder instead of the web UI");
        write_placeholders(&out);
        println!("cargo:rustc-env=SESSIONTRACE_EMBEDDED_UI=placeholder");
        return;
    }

    for bundle in [&RECORDER, &UI] {
        let project = root.join(bundle.project);
        let marker = project.join(bundle.marker);
        if !marker.exists() {
            println!("cargo:warning={} is missing: running the npm build of {}/", marker.display(), bundle.project);
            if let Err(reason) = npm_build(&project) {
                fail(&format!("{} is missing and building it failed: {reason}", marker.display()));
            }
            if !marker.exists() {
                fail(&format!("the npm build of {}/ did not make {}", bundle.project, bundle.marker));
            }
        } else if let Some(newer) = newer_source(&project, &marker) {
            println!(
                "cargo:warning={}/{} is older than {}: run `npm --prefix {} run build` to embed the current code",
                bundle.project,
                bundle.marker,
                newer.display(),
                bundle.project
            );
        }
        // The sources are not watched: a UI edit rebuilds the server only once `npm run build` ran.
        let watched = if bundle.project == "ui" { project.join("dist") } else { marker };
        println!("cargo:rerun-if-changed={}", watched.display());
    }

    copy_tree(&root.join("ui/dist"), &out.join("ui"));
    let recorder = root.join(RECORDER.project).join(RECORDER.marker);
    copy_file(&recorder, &out.join("recorder/recorder.js"));
    println!("cargo:rustc-env=SESSIONTRACE_EMBEDDED_UI=built");
}

/// Stops the build with what happened and the commands that fix it.
fn fail(what: &str) -> ! {
    eprintln!(
        "\nerror: sessiontrace embeds the web UI and the browser recorder, but {what}.\n\
         Build them from the repository root with:\n\n    {BUILD_COMMAND}\n\n\
         (scripts/build.sh does that and builds the release binary), or, for Rust-only work, embed a page\n\
         that says the UI was not built:\n\n    SESSIONTRACE_SKIP_UI=1 cargo build\n"
    );
    std::process::exit(1);
}

/// `npm ci` (when `node_modules` is missing) and `npm run build` in `project`; npm's output goes to this
/// script's stderr (its stdout is read by cargo).
fn npm_build(project: &Path) -> Result<(), String> {
    let mut steps: Vec<&[&str]> = Vec::new();
    if !project.join("node_modules").exists() {
        steps.push(&["ci", "--no-audit", "--no-fund", "--loglevel=error"]);
    }
    steps.push(&["run", "build"]);
    for args in steps {
        let status = Command::new("npm")
            .args(args)
            .current_dir(project)
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::io::stderr()))
            .status()
            .map_err(|error| format!("cannot run npm ({error})"))?;
        if !status.success() {
            return Err(format!("`npm {}` in {} exited with {status}", args.join(" "), project.display()));
        }
    }
    Ok(())
}

/// A source file of `project` changed after `marker` was built, if any.
fn newer_source(project: &Path, marker: &Path) -> Option<PathBuf> {
    let built = modified(marker)?;
    let mut sources = Vec::new();
    collect_files(&project.join("src"), &mut sources);
    sources.push(project.join("index.html"));
    sources.into_iter().find(|source| modified(source).is_some_and(|time| time > built))
}

fn modified(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|metadata| metadata.modified()).ok()
}

fn collect_files(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, files);
        } else {
            files.push(path);
        }
    }
}

/// Copies every file under `from` to `to` (source maps left out: they would double the binary).
fn copy_tree(from: &Path, to: &Path) {
    let mut files = Vec::new();
    collect_files(from, &mut files);
    for file in files {
        if file.extension().is_some_and(|extension| extension == "map") {
            continue;
        }
        let relative = file.strip_prefix(from).expect("file under its folder");
        copy_file(&file, &to.join(relative));
    }
}

/// Copies one file, with brotli and gzip copies beside it when it is text and they are smaller.
fn copy_file(from: &Path, to: &Path) {
    let data = fs::read(from).unwrap_or_else(|error| panic!("read {}: {error}", from.display()));
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).expect("create a folder in $OUT_DIR/web");
    }
    fs::write(to, &data).expect("write into $OUT_DIR/web");
    let compressible = to
        .extension()
        .and_then(|extension| extension.to_str())
        .is_some_and(|extension| COMPRESSIBLE.contains(&extension));
    if !compressible || data.len() < 256 {
        return;
    }
    let keep = |compressed: &[u8]| compressed.len() * 10 < data.len() * 9;
    let brotli = brotli_compress(&data);
    if keep(&brotli) {
        fs::write(with_suffix(to, "br"), brotli).expect("write a .br copy");
    }
    let gzip = gzip_compress(&data);
    if keep(&gzip) {
        fs::write(with_suffix(to, "gz"), gzip).expect("write a .gz copy");
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

fn brotli_compress(data: &[u8]) -> Vec<u8> {
    let mut compressed = Vec::new();
    let params = brotli::enc::BrotliEncoderParams { quality: 11, lgwin: 22, ..Default::default() };
    brotli::BrotliCompress(&mut &data[..], &mut compressed, &params).expect("brotli into memory");
    compressed
}

fn gzip_compress(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).expect("gzip into memory");
    encoder.finish().expect("gzip into memory")
}

/// The page and script embedded with `SESSIONTRACE_SKIP_UI=1`.
fn write_placeholders(out: &Path) {
    let page = format!(
        "<!doctype html><meta charset=\"utf-8\"><title>sessiontrace: UI not built</title>\
         <h1>sessiontrace</h1><p>This binary was built with <code>SESSIONTRACE_SKIP_UI=1</code>, without the web \
         UI. Build it with <code>{}</code> and then <code>cargo build</code> (or run <code>scripts/build.sh</code>). \
         The API is at <a href=\"/api/sessions\">/api/sessions</a>.</p>\n",
        BUILD_COMMAND.replace('&', "&amp;")
    );
    fs::write(out.join("ui/index.html"), page).expect("write the placeholder page");
    fs::write(
        out.join("recorder/recorder.js"),
        "console.error('sessiontrace: this server was built with SESSIONTRACE_SKIP_UI=1, without the recorder bundle');\n",
    )
    .expect("write the placeholder recorder");
}
