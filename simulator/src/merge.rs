//! `vopr merge`: the JSON-lines outputs of the shards of a sweep (`vopr --seeds A..B --shard
//! I/N --json`) merged into one summary, after checking that together they hold every seed of
//! the sweep exactly once and were run alike (one vopr version, one range, one set of flags).
//!
//! Which seeds must be there: those of `--seeds A..B` when given to merge; else the range the
//! lines themselves name (`sweep` in each line of a `--seeds` run); else (lines of single-seed
//! runs) the union of the seeds present, where only duplicates can be found.

use crate::run::{LivenessState, Outcome, SweepInfo};
use crate::summary::{run_seconds, SeedResult, SweepSummary};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// The fields of a seed's JSON line that a merge reads (any others are ignored).
#[derive(Deserialize)]
struct SeedLine {
    seed: u64,
    outcome: String,
    version: String,
    linearizability: String,
    #[serde(default)]
    ticks: u64,
    #[serde(default)]
    ticks_per_s: f64,
    #[serde(default)]
    linearizability_ms: f64,
    #[serde(default)]
    crashes: u64,
    #[serde(default)]
    partitions: u64,
    #[serde(default)]
    storage_faults: u64,
    #[serde(default)]
    packets_dropped: u64,
    #[serde(default)]
    packets_duplicated: u64,
    #[serde(default)]
    aimed_faults: BTreeMap<String, u64>,
    #[serde(default)]
    violation: Option<ViolationLine>,
    #[serde(default)]
    liveness: Option<LivenessState>,
    #[serde(default)]
    replay: Option<String>,
    #[serde(default)]
    sweep: Option<SweepInfo>,
    #[serde(default)]
    options: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ViolationLine {
    invariant: String,
    #[serde(default)]
    message: String,
}

/// A failing seed of the merged outputs.
#[derive(Debug, Clone)]
pub struct Failing {
    pub seed: u64,
    pub outcome: Outcome,
    /// What it found, one line (the `# found:` line of its seed file).
    pub found: String,
    /// Where its line is: `FILE:LINE`.
    pub location: String,
    /// Its JSON line as read.
    pub line: String,
    pub options: Option<serde_json::Value>,
}

/// The merged outputs: the summary and every failing seed, in seed order.
#[derive(Debug)]
pub struct Merged {
    pub summary: SweepSummary,
    pub failing: Vec<Failing>,
}

/// Where a seed was first read: (file index, line number).
type Seen = (usize, usize);

/// Reads and checks `files` (`-` is stdin). `seeds`: the range every seed of which must be
/// there once. Every error is one line, naming the file and line where it applies.
pub fn merge(files: &[PathBuf], seeds: Option<Range<u64>>) -> Result<Merged, String> {
    if files.is_empty() {
        return Err(
            "merge needs the JSON-lines files of the shards, e.g. 'vopr merge shard-*.jsonl'"
                .into(),
        );
    }
    let name = |i: usize| files[i].display().to_string();
    // The same file twice would only show up as every one of its seeds duplicated.
    let mut paths = BTreeMap::new();
    for (i, path) in files.iter().enumerate() {
        let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
        if let Some(j) = paths.insert(key, i) {
            return Err(format!(
                "{} is given twice (as file {} and {}); give each shard's output once",
                name(i),
                j + 1,
                i + 1
            ));
        }
    }
    let mut summary = SweepSummary::default();
    let mut failing = Vec::new();
    let mut seen: BTreeMap<u64, Seen> = BTreeMap::new();
    let mut duplicates: Vec<(u64, Seen, Seen)> = Vec::new();
    let mut first: Option<(String, Option<SweepInfo>, Seen)> = None;
    let mut shards_present = BTreeSet::new();
    for (i, path) in files.iter().enumerate() {
        let reader = open(path)?;
        for (n, line) in reader.lines().enumerate() {
            let at = (i, n + 1);
            let location = format!("{}:{}", name(i), n + 1);
            let text = line.map_err(|e| format!("cannot read {location}: {e}"))?;
            if text.trim().is_empty() {
                continue;
            }
            let s: SeedLine = serde_json::from_str(&text).map_err(|e| {
                format!(
                    "{location}: not a seed line of 'vopr --json' ({e}); merge the output of \
                     'vopr --seeds A..B --shard I/N --json'"
                )
            })?;
            let outcome = Outcome::from_name(&s.outcome).ok_or_else(|| {
                format!(
                    "{location}: unknown outcome '{}' of seed {}",
                    s.outcome, s.seed
                )
            })?;
            match &first {
                None => first = Some((s.version.clone(), s.sweep.clone(), at)),
                Some((version, sweep, where_)) => {
                    let there = format!("{}:{}", name(where_.0), where_.1);
                    if *version != s.version {
                        return Err(format!(
                            "{location}: seed {} was run by vopr {}, but {there} by vopr {version}; \
                             merge the outputs of one build",
                            s.seed, s.version
                        ));
                    }
                    if let (Some(a), Some(b)) = (sweep, &s.sweep) {
                        if (a.start, a.end, a.shards, &a.flags)
                            != (b.start, b.end, b.shards, &b.flags)
                        {
                            return Err(format!(
                                "{location}: seed {} is of the sweep '{}', but {there} of '{}'; \
                                 merge the shards of one sweep",
                                s.seed,
                                describe(b),
                                describe(a)
                            ));
                        }
                    } else if sweep.is_none() && s.sweep.is_some() {
                        first = Some((s.version.clone(), s.sweep.clone(), at));
                    }
                }
            }
            if let Some(sweep) = &s.sweep {
                let in_shard = (sweep.start..sweep.end).contains(&s.seed)
                    && (s.seed - sweep.start) % sweep.shards == sweep.shard;
                if !in_shard {
                    return Err(format!(
                        "{location}: seed {} is not of shard {}/{} of {}..{}, as its line says",
                        s.seed, sweep.shard, sweep.shards, sweep.start, sweep.end
                    ));
                }
                shards_present.insert(sweep.shard);
            }
            if let Some(&earlier) = seen.get(&s.seed) {
                duplicates.push((s.seed, earlier, at));
                continue;
            }
            seen.insert(s.seed, at);
            let aimed = s
                .aimed_faults
                .iter()
                .map(|(k, v)| (k.as_str(), *v))
                .collect();
            summary.add(&SeedResult {
                seed: s.seed,
                outcome,
                invariant: s.violation.as_ref().map(|v| v.invariant.as_str()),
                linearizability: &s.linearizability,
                run_s: run_seconds(s.ticks, s.ticks_per_s, s.linearizability_ms),
                crashes: s.crashes,
                partitions: s.partitions,
                storage_faults: s.storage_faults,
                packets_dropped: s.packets_dropped,
                packets_duplicated: s.packets_duplicated,
                aimed,
                replay: s.replay.as_deref(),
            });
            if outcome != Outcome::Pass {
                let found = match (&s.violation, &s.liveness) {
                    (Some(v), _) => {
                        format!(
                            "{}: {}",
                            v.invariant,
                            v.message.lines().next().unwrap_or("")
                        )
                    }
                    (None, Some(l)) => format!("liveness: {}", l.headline()),
                    (None, None) => outcome.name().to_string(),
                };
                failing.push(Failing {
                    seed: s.seed,
                    outcome,
                    found,
                    location,
                    line: text,
                    options: s.options,
                });
            }
        }
    }
    if let Some((seed, a, b)) = duplicates.first() {
        let more = match duplicates.len() - 1 {
            0 => String::new(),
            n => format!(
                " (and {n} more duplicated seed{})",
                if n == 1 { "" } else { "s" }
            ),
        };
        return Err(format!(
            "seed {seed} is in both {}:{} and {}:{}{more}; merge each shard's output once",
            name(a.0),
            a.1,
            name(b.0),
            b.1
        ));
    }
    let (version, sweep) = match first {
        Some((version, sweep, _)) => (version, sweep),
        None => {
            let names: Vec<String> = (0..files.len()).map(name).collect();
            return match seeds {
                Some(r) => Err(format!(
                    "no seed lines in {}: all {} seeds of {}..{} are missing",
                    names.join(", "),
                    r.end - r.start,
                    r.start,
                    r.end
                )),
                None => Err(format!(
                    "no seed lines in {}; merge the output of 'vopr --seeds A..B --json'",
                    names.join(", ")
                )),
            };
        }
    };
    let expected = seeds.or_else(|| sweep.as_ref().map(|s| s.start..s.end));
    if let Some(range) = &expected {
        check_complete(range, &seen, sweep.as_ref(), &shards_present, &name)?;
        summary.seeds = Some(format!("{}..{}", range.start, range.end));
    }
    summary.version = version;
    summary.files = Some(files.len());
    summary.finish();
    failing.sort_by_key(|f| f.seed);
    Ok(Merged { summary, failing })
}

fn open(path: &Path) -> Result<Box<dyn BufRead>, String> {
    if path == Path::new("-") {
        return Ok(Box::new(std::io::BufReader::new(std::io::stdin())));
    }
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        return Err(format!(
            "{} is a folder; give the JSON-lines files in it (e.g. {}/*.jsonl)",
            path.display(),
            path.display()
        ));
    }
    Ok(Box::new(std::io::BufReader::new(file)))
}

fn describe(s: &SweepInfo) -> String {
    let mut text = format!("--seeds {}..{} --shard I/{}", s.start, s.end, s.shards);
    if !s.flags.is_empty() {
        text.push(' ');
        text.push_str(&s.flags);
    }
    text
}

/// Every seed of `range` was read (the caller has refused duplicates), and none outside it.
fn check_complete(
    range: &Range<u64>,
    seen: &BTreeMap<u64, Seen>,
    sweep: Option<&SweepInfo>,
    shards_present: &BTreeSet<u64>,
    name: &dyn Fn(usize) -> String,
) -> Result<(), String> {
    let outside: Vec<(&u64, &Seen)> = seen.iter().filter(|(s, _)| !range.contains(s)).collect();
    if let Some((seed, at)) = outside.iter().min() {
        return Err(format!(
            "{}:{}: seed {seed} is outside the seeds {}..{} ({} seed{} outside); merge the \
             shards of that range only",
            name(at.0),
            at.1,
            range.start,
            range.end,
            outside.len(),
            if outside.len() == 1 { "" } else { "s" }
        ));
    }
    let len = range.end - range.start;
    let missing = len - seen.len() as u64;
    if missing == 0 {
        return Ok(());
    }
    let mut present: Vec<u64> = seen.keys().copied().collect();
    present.sort_unstable();
    let mut first = Vec::new();
    let mut next = range.start;
    let mut present = present.into_iter().peekable();
    while first.len() < 5 && next < range.end {
        if present.peek() == Some(&next) {
            present.next();
        } else {
            first.push(next.to_string());
        }
        next += 1;
    }
    let mut message = format!(
        "{missing} of the {len} seeds of {}..{} are missing (first: {})",
        range.start,
        range.end,
        first.join(", ")
    );
    if let Some(sweep) = sweep.filter(|s| s.shards <= 1 << 20) {
        let absent: Vec<String> = (0..sweep.shards)
            .filter(|i| !shards_present.contains(i))
            .take(5)
            .map(|i| format!("{i}/{}", sweep.shards))
            .collect();
        if !absent.is_empty() {
            message.push_str(&format!(
                "; no output at all from shard {}",
                absent.join(", ")
            ));
        }
    }
    message.push_str("; pass every shard's complete output");
    Err(message)
}
