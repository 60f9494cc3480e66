//! Seed files: one small, human-readable file per seed worth keeping (seeds/*.seed).
//!
//! ```text
//! # found: agreement: op 12 executed as ... (what the seed found, for people)
//! seed = 1234
//! set network.packet_loss_probability = 0.3
//! expect = pass
//! ```
//! `set` lines override options exactly as `--set` does; `expect` is the outcome the seed
//! must have now (normally `pass`, once its bug is fixed).

use crate::options::Options;
use crate::run::Outcome;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq)]
pub struct SeedFile {
    pub path: PathBuf,
    pub seed: u64,
    pub overrides: Vec<(String, String)>,
    pub expect: Outcome,
}

impl SeedFile {
    /// The options this seed runs with.
    pub fn options(&self) -> Result<Options, String> {
        let mut options = Options::from_seed(self.seed);
        for (k, v) in &self.overrides {
            options
                .set(k, v)
                .map_err(|e| format!("{}: {e}", self.path.display()))?;
        }
        Ok(options)
    }
}

/// Parses one seed file; errors name the file and line.
pub fn parse(path: &Path, text: &str) -> Result<SeedFile, String> {
    let mut seed = None;
    let mut overrides = Vec::new();
    let mut expect = Outcome::Pass;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let at = || format!("{}:{}", path.display(), i + 1);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| format!("{}: expected 'key = value', got '{line}'", at()))?;
        let (key, value) = (key.trim(), value.trim());
        if let Some(option) = key.strip_prefix("set ") {
            overrides.push((option.trim().to_string(), value.to_string()));
        } else if key == "seed" {
            seed = Some(
                value
                    .parse::<u64>()
                    .map_err(|_| format!("{}: seed must be an integer, got '{value}'", at()))?,
            );
        } else if key == "expect" {
            expect = match value {
                "pass" => Outcome::Pass,
                "correctness" => Outcome::Correctness,
                "liveness" => Outcome::Liveness,
                _ => {
                    return Err(format!(
                        "{}: expect must be pass, correctness or liveness, got '{value}'",
                        at()
                    ))
                }
            };
        } else {
            return Err(format!("{}: unknown key '{key}' (seed, set, expect)", at()));
        }
    }
    let seed = seed.ok_or_else(|| format!("{}: no 'seed = N' line", path.display()))?;
    let file = SeedFile {
        path: path.to_path_buf(),
        seed,
        overrides,
        expect,
    };
    file.options()?;
    Ok(file)
}

/// Every seed file under the given paths (files, or folders searched recursively for
/// `*.seed`), sorted. Finding none is an error: a replay of nothing proves nothing.
pub fn collect(paths: &[PathBuf]) -> Result<Vec<SeedFile>, String> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            find_seed_files(path, &mut files)?;
        } else {
            files.push(path.clone());
        }
    }
    if files.is_empty() {
        let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(format!(
            "no seed files (*.seed) in {}; give a folder that holds some, e.g. seeds/",
            names.join(", ")
        ));
    }
    files.sort();
    files
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p)
                .map_err(|e| format!("cannot read seed file {}: {e}", p.display()))?;
            parse(p, &text)
        })
        .collect()
}

/// Adds every `*.seed` file in `folder` and its subfolders to `files`.
fn find_seed_files(folder: &Path, files: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries = std::fs::read_dir(folder)
        .map_err(|e| format!("cannot read folder {}: {e}", folder.display()))?;
    for entry in entries {
        let p = entry
            .map_err(|e| format!("cannot read folder {}: {e}", folder.display()))?
            .path();
        if p.is_dir() {
            find_seed_files(&p, files)?;
        } else if p.extension().is_some_and(|e| e == "seed") {
            files.push(p);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects_with_line_numbers() {
        let p = Path::new("x.seed");
        let f = parse(
            p,
            "# hi\nseed = 7\nset crash_probability = 0\nexpect = pass\n",
        )
        .unwrap();
        assert_eq!(f.seed, 7);
        assert_eq!(f.options().unwrap().crash_probability, 0.0);
        assert_eq!(
            parse(p, "seed = x").unwrap_err(),
            "x.seed:1: seed must be an integer, got 'x'"
        );
        assert!(parse(p, "seed = 1\nbogus = 2")
            .unwrap_err()
            .starts_with("x.seed:2"));
        assert!(parse(p, "set nope = 1\nseed = 1")
            .unwrap_err()
            .contains("unknown option"));
        assert!(parse(p, "# only a comment").is_err());
    }
}
