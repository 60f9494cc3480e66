//! Records the git commit vopr is built from (`VOPR_GIT_COMMIT`, the short id, or "unknown"
//! outside a git checkout of this repository), for `version` in its JSON. Never fails a build.

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = manifest.parent().map(Path::to_path_buf).unwrap_or_default();
    // Only this repository's own checkout: a copy of it inside another git repository (or
    // none at all) is "unknown".
    let ours = git(&manifest, &["rev-parse", "--show-toplevel"])
        .is_some_and(|top| std::fs::canonicalize(top).ok() == std::fs::canonicalize(&root).ok());
    let commit = if ours {
        git(&manifest, &["rev-parse", "--short", "HEAD"])
    } else {
        None
    };
    if commit.is_some() {
        // Rebuild when HEAD moves: HEAD itself, the branch it names, and packed refs.
        let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
        if let Some(branch) = git(&manifest, &["symbolic-ref", "-q", "HEAD"]) {
            watched.push(branch);
        }
        for name in watched {
            if let Some(path) = git(&manifest, &["rev-parse", "--git-path", &name]) {
                let path = manifest.join(path);
                if path.exists() {
                    println!("cargo:rerun-if-changed={}", path.display());
                }
            }
        }
    }
    let commit = commit.unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=VOPR_GIT_COMMIT={commit}");
}
