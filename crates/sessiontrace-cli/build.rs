//! Build script:
//! - the git commit for `sessiontrace --version` (`git rev-parse --short HEAD`, "unknown" outside a git
//!   checkout or without git; `SESSIONTRACE_GIT_COMMIT` overrides it, e.g. for a build from a source
//!   tarball). Reruns when HEAD moves.
//! - in release builds for x86_64 Linux, `symbol-order.txt` for the linker: the functions the server runs
//!   at start and under a steady ingest load are laid out first and together (written by
//!   `bench/symbol-order.sh`, which says why). There Rust links with its own lld, which reads the list;
//!   `SESSIONTRACE_SYMBOL_ORDER=0` leaves it out, for a build that links with another linker.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=SESSIONTRACE_GIT_COMMIT");
    let commit = std::env::var("SESSIONTRACE_GIT_COMMIT")
        .ok()
        .filter(|commit| !commit.is_empty())
        .or_else(|| git(&["rev-parse", "--short", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    // HEAD names the branch; the branch's ref (loose or packed) names the commit. In a worktree these live
    // in different folders, which `--git-path` resolves.
    for path in ["HEAD", "packed-refs"] {
        watch_git_path(path);
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch_git_path(&branch);
    }
    println!("cargo:rustc-env=SESSIONTRACE_GIT_COMMIT={commit}");
    symbol_order();
}

fn symbol_order() {
    println!("cargo:rerun-if-env-changed=SESSIONTRACE_SYMBOL_ORDER");
    let order = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo")).join("symbol-order.txt");
    println!("cargo:rerun-if-changed={}", order.display());
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let x86_64_linux = var("CARGO_CFG_TARGET_ARCH") == "x86_64"
        && var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "gnu";
    // Rust links with its own lld there from 1.90 on, unless the build names another linker.
    let own_lld = rustc_minor().is_some_and(|minor| minor >= 90)
        && !var("CARGO_ENCODED_RUSTFLAGS").contains("link")
        && var("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER").is_empty();
    if var("PROFILE") == "release"
        && x86_64_linux
        && own_lld
        && var("SESSIONTRACE_SYMBOL_ORDER") != "0"
        && order.exists()
    {
        println!("cargo:rustc-link-arg-bin=sessiontrace=-Wl,--symbol-ordering-file={}", order.display());
        // Names the build no longer has (a dependency upgraded since the list was written) are skipped.
        println!("cargo:rustc-link-arg-bin=sessiontrace=-Wl,--no-warn-symbol-ordering");
    }
}

/// The minor version of the compiler building this (`rustc 1.95.0 (…)` gives 95).
fn rustc_minor() -> Option<u32> {
    let output = Command::new(std::env::var("RUSTC").ok()?).arg("--version").output().ok()?;
    let version = String::from_utf8(output.stdout).ok()?;
    version.split_whitespace().nth(1)?.split('.').nth(1)?.parse().ok()
}

fn watch_git_path(path: &str) {
    if let Some(file) = git(&["rev-parse", "--path-format=absolute", "--git-path", path])
        && std::path::Path::new(&file).exists()
    {
        println!("cargo:rerun-if-changed={file}");
    }
}

/// One line of git's output, or `None` when git is missing or fails.
fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    let line = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (output.status.success() && !line.is_empty()).then_some(line)
}
