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
//!
//! A regression may also be kept as a fault schedule (`*.schedule.jsonl`, see
//! `crate::schedule`): its run no longer depends on how the swarm draws faults.

use crate::options::Options;
use crate::run::Outcome;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq)]
pub struct SeedFile {
    pub path: PathBuf,
    pub seed: u64,
    pub overrides: Vec<(String, String)>,
    pub expect: Outcome,
    /// A schedule file: its options and the faults it replays (no `overrides` then).
    pub schedule: Option<crate::schedule::Schedule>,
}

impl SeedFile {
    /// The options this seed runs with.
    pub fn options(&self) -> Result<Options, String> {
        if let Some(schedule) = &self.schedule {
            return Ok(schedule.header.options.clone());
        }
        let mut options = Options::from_seed(self.seed);
        for (k, v) in &self.overrides {
            options
                .set(k, v)
                .map_err(|e| format!("{}: {e}", self.path.display()))?;
        }
        Ok(options)
    }
}

/// The `set` lines that turn seed `seed`'s own options into `options` (a run's JSON
/// `options`): every value that differs, by its dotted name, in the order of the JSON. So a seed
/// file (or a replay) reproduces any run, `--lite` and `--bench` ones too. Errors when the
/// result would not be `options` (options of another vopr version).
pub fn overrides_for(
    seed: u64,
    options: &serde_json::Value,
) -> Result<Vec<(String, String)>, String> {
    // Both sides as read back from JSON text: a float read from text may differ from the one
    // written by its last bit, and only values that truly differ may become `set` lines.
    let options = &as_read_back(options);
    let base = as_read_back(&serde_json::to_value(Options::from_seed(seed)).expect("serialize"));
    let mut overrides = Vec::new();
    differences("", &base, options, &mut overrides);
    let mut rebuilt = Options::from_seed(seed);
    for (k, v) in &overrides {
        rebuilt
            .set(k, v)
            .map_err(|e| format!("options of seed {seed} do not fit this vopr: {e}"))?;
    }
    if as_read_back(&serde_json::to_value(&rebuilt).expect("serialize")) != *options {
        return Err(format!(
            "options of seed {seed} do not fit this vopr (written by another version?)"
        ));
    }
    Ok(overrides)
}

fn as_read_back(value: &serde_json::Value) -> serde_json::Value {
    serde_json::from_str(&value.to_string()).expect("JSON reads back")
}

fn differences(
    prefix: &str,
    base: &serde_json::Value,
    options: &serde_json::Value,
    out: &mut Vec<(String, String)>,
) {
    use serde_json::Value;
    if let (Value::Object(b), Value::Object(o)) = (base, options) {
        for (key, value) in o {
            let name = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            match b.get(key) {
                Some(base_value) => differences(&name, base_value, value, out),
                None => out.push((name, value.to_string())),
            }
        }
    } else if base != options {
        let text = match options {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out.push((prefix.to_string(), text));
    }
}

/// Parses one kept run: a seed file, or a schedule file.
pub fn parse_any(path: &Path, text: &str) -> Result<SeedFile, String> {
    if !crate::schedule::Schedule::looks_like(text) {
        return parse(path, text);
    }
    let schedule =
        crate::schedule::Schedule::parse(text).map_err(|e| format!("{}: {e}", path.display()))?;
    let expect = Outcome::from_name(&schedule.header.expect)
        .filter(|o| *o != Outcome::HarnessBug)
        .ok_or_else(|| {
            format!(
                "{}: expect must be pass, correctness or liveness, got '{}'",
                path.display(),
                schedule.header.expect
            )
        })?;
    Ok(SeedFile {
        path: path.to_path_buf(),
        seed: schedule.header.seed,
        overrides: Vec::new(),
        expect,
        schedule: Some(schedule),
    })
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
                "undecided" => Outcome::Undecided,
                _ => {
                    return Err(format!(
                    "{}: expect must be pass, correctness, liveness or undecided, got '{value}'",
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
        schedule: None,
    };
    file.options()?;
    Ok(file)
}

/// Every seed file under the given paths (files, or folders searched recursively for
/// `*.seed` and `*.schedule.jsonl`), sorted. Finding none is an error: a replay of nothing
/// proves nothing.
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
            "no seed files (*.seed, *.schedule.jsonl) in {}; give a folder that holds some, e.g. seeds/",
            names.join(", ")
        ));
    }
    files.sort();
    files
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p)
                .map_err(|e| format!("cannot read seed file {}: {e}", p.display()))?;
            parse_any(p, &text)
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
        } else if p.extension().is_some_and(|e| e == "seed")
            || p.to_string_lossy().ends_with(".schedule.jsonl")
        {
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

    #[test]
    fn overrides_reproduce_any_options() {
        for seed in [1, 7, 400925] {
            for options in [
                Options::from_seed(seed),
                Options::from_seed(seed).without_faults(),
                Options::benchmark(seed),
            ] {
                let json = serde_json::to_value(&options).unwrap();
                let overrides = overrides_for(seed, &json).unwrap();
                let mut rebuilt = Options::from_seed(seed);
                for (k, v) in &overrides {
                    rebuilt.set(k, v).unwrap();
                }
                assert_eq!(rebuilt, options, "{overrides:?}");
            }
            assert!(overrides_for(
                seed,
                &serde_json::to_value(Options::from_seed(seed)).unwrap()
            )
            .unwrap()
            .is_empty());
        }
        let mut alien = serde_json::to_value(Options::from_seed(3)).unwrap();
        alien["no_such_option"] = 1.into();
        assert!(overrides_for(3, &alien).is_err());
    }
}
