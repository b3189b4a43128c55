//! Build script: the git commit for `sessiontrace --version` (`git rev-parse --short HEAD`, "unknown"
//! outside a git checkout or without git; `SESSIONTRACE_GIT_COMMIT` overrides it, e.g. for a build from
//! a source tarball). Reruns when HEAD moves.

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
