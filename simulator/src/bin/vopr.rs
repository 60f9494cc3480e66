//! vopr: runs randomized cluster lives of the VSR replica and checks every invariant.
//! See DESIGN §5 for the contract (flags, JSON fields, exit codes).

use clap::{Parser, Subcommand};
use simulator::cli::{self, parse_override, parse_seed_range, parse_shard, shard_len, shard_seeds};
use simulator::options::Options;
use simulator::run::{self, Outcome, RunConfig, Summary, SweepInfo, VERSION};
use simulator::schedule::{self, Schedule};
use simulator::summary::{SeedResult, SweepSummary};
use simulator::{cluster, history_cli, merge, seeds};
use std::io::{IsTerminal, Write};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::{mpsc, Mutex};

#[derive(Parser, Debug)]
#[command(
    name = "vopr",
    version = VERSION,
    about = "Deterministic fault-injection simulator for VSR"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Run one seed (a random one when absent and no --seeds).
    #[arg(long)]
    seed: Option<u64>,
    /// Run a range of seeds: A..B (B excluded) or A..=B.
    #[arg(long, conflicts_with = "seed", value_parser = parse_seed_range)]
    seeds: Option<Range<u64>>,
    /// Parallel runs for --seeds and replay (each seed stays single-threaded; never more
    /// threads than seeds).
    #[arg(long, global = true, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    jobs: u64,
    /// Run only shard I of N of the range (I/N, 0 <= I < N).
    #[arg(long, requires = "seeds", conflicts_with = "seed", value_parser = parse_shard)]
    shard: Option<(u64, u64)>,
    /// Length of the safety phase, in ticks (at least 1).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    ticks: Option<u64>,
    /// Replicas (1..=6).
    #[arg(long)]
    replicas: Option<u8>,
    /// Clients (1..=64).
    #[arg(long)]
    clients: Option<u8>,
    /// Consensus groups on every node (1..=8): a metadata group and K-1 partition groups,
    /// each its own VSR replica per node (also with --bench).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=8))]
    groups: Option<u8>,
    /// No faults at all (performance mode).
    #[arg(long)]
    lite: bool,
    /// The benchmark: 3 replicas, 4 closed-loop clients, every fault on.
    #[arg(long)]
    bench: bool,
    /// Override any option: KEY=VALUE with KEY as in the JSON "options" (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// One JSON object per seed on stdout (with --seeds, the sweep's summary object goes to
    /// stderr, or to --summary FILE).
    #[arg(long)]
    json: bool,
    /// With --seeds: write the sweep's summary as a JSON object to FILE.
    #[arg(long, value_name = "FILE", requires = "seeds", conflicts_with = "seed")]
    summary: Option<PathBuf>,
    /// Log level of status lines on stderr.
    #[arg(long, value_enum, value_name = "LEVEL")]
    log: Option<LogLevel>,
    /// Write every event as JSON lines to FILE (one seed: not with --seeds).
    #[arg(long, value_name = "FILE", conflicts_with = "seeds")]
    trace: Option<PathBuf>,
    /// Only these events in the --trace file: replica=R, kind=K (deliver, drop, fault, commit,
    /// status, ...), command=C (deliveries), ticks=A..B; comma-separated, keys repeatable.
    #[arg(long, value_name = "FILTER", requires = "trace", value_parser = trace_filter)]
    trace_filter: Option<simulator::trace::Filter>,
    /// Write the client history (DESIGN §6) to FILE (one seed: not with --seeds).
    #[arg(long, value_name = "FILE", conflicts_with = "seeds")]
    history: Option<PathBuf>,
    /// Skip the end-of-run linearizability check of the client history (every seed).
    #[arg(long)]
    no_linearizability: bool,
    /// Write the run's fault schedule (JSON lines) to FILE; 'vopr replay FILE' runs it again
    /// (one seed: not with --seeds).
    #[arg(long, value_name = "FILE", conflicts_with = "seeds")]
    schedule_out: Option<PathBuf>,
    /// Write the run's timeline to FILE: one self-contained HTML page (replica lanes, faults,
    /// client operations, the violation) (one seed: not with --seeds).
    #[arg(long, value_name = "FILE", conflicts_with = "seeds")]
    timeline: Option<PathBuf>,
    /// Where failing runs write their fault schedule (seed-N.schedule.jsonl, ready for
    /// seeds/ and for 'vopr replay').
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        default_value = "vopr-artifacts"
    )]
    artifacts: PathBuf,
}

/// The levels of `--log`.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    fn filter(self) -> tracing_subscriber::filter::LevelFilter {
        use tracing_subscriber::filter::LevelFilter;
        match self {
            LogLevel::Error => LevelFilter::ERROR,
            LogLevel::Warn => LevelFilter::WARN,
            LogLevel::Info => LevelFilter::INFO,
            LogLevel::Debug => LevelFilter::DEBUG,
            LogLevel::Trace => LevelFilter::TRACE,
        }
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Replay seed files and fault schedules (or folders of them, e.g. seeds/); non-zero exit
    /// on any difference.
    Replay {
        paths: Vec<PathBuf>,
        /// With one file: also write its run's timeline (one self-contained HTML page).
        #[arg(long, value_name = "FILE")]
        timeline: Option<PathBuf>,
        /// With one file: also write every event of its run as JSON lines.
        #[arg(long, value_name = "FILE")]
        trace: Option<PathBuf>,
    },
    /// Check a recorded history for linearizability (exit 0, 1, or 4 for unknown).
    CheckHistory {
        file: PathBuf,
        #[arg(long)]
        json: bool,
        /// Also draw the history, per key, with the checker's evidence, as an HTML page.
        #[arg(long, value_name = "FILE")]
        timeline: Option<PathBuf>,
        /// Memory the search may hold, in MiB; past it the answer is unknown (exit 4). Default:
        /// a quarter of the machine's memory (or of the cgroup's limit), 1024 if unreadable.
        #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..))]
        memory_mb: Option<u64>,
        /// Threads checking independent keys at once; the result is the same as with one
        /// (unless the memory budget or the time runs out).
        #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        jobs: u64,
    },
    /// Shrink a failing run to a small one that fails the same way: a minimal fault schedule
    /// (delta debugging over its events, then fewer ticks, clients, replicas, lower rates).
    Shrink {
        /// A seed, a seed file, or a schedule file (e.g. vopr-artifacts/seed-N.schedule.jsonl).
        input: String,
        /// Runs tried at most (deterministic: the same input shrinks to the same output).
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
        budget_runs: u64,
        /// Stop after N seconds as well (then another machine may shrink further).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        budget_s: Option<u64>,
        /// Where to write the minimal schedule (default: the artifacts folder,
        /// seed-N.min.schedule.jsonl).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Merge the --json outputs of the shards of a sweep into one summary; checks that every
    /// seed is there once (exit 1 if any seed failed, 4 if the only seeds that did not pass are
    /// undecided, 2 if a seed is missing or duplicated or a file is unreadable).
    Merge {
        /// JSON-lines files of 'vopr --seeds A..B --shard I/N --json' ('-' is stdin).
        files: Vec<PathBuf>,
        /// The seeds that must all be there (A..B or A..=B); by default the range the lines
        /// name.
        #[arg(long, value_parser = parse_seed_range)]
        seeds: Option<Range<u64>>,
        /// Print the summary as one JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// Also write the summary as a JSON object to FILE.
        #[arg(long, value_name = "FILE")]
        summary: Option<PathBuf>,
        /// Write a seed file (seeds/ format) per failing seed, and their JSON lines
        /// (failures.jsonl), to DIR.
        #[arg(long, value_name = "DIR")]
        failures: Option<PathBuf>,
    },
}

/// One run of a sweep or a replay: its seed, its options, and the fault schedule it replays
/// (none: faults drawn from the seed).
type Task = (u64, Options, Option<Vec<schedule::Event>>);

/// `print!` that exits quietly when stdout's reader has gone (see `write_stdout`).
macro_rules! out {
    ($($arg:tt)*) => { write_stdout(format_args!($($arg)*)) };
}

/// `println!` that exits quietly when stdout's reader has gone (see `write_stdout`).
macro_rules! outln {
    ($($arg:tt)*) => { write_stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

use simulator::cli::write_stdout;

fn trace_filter(text: &str) -> Result<simulator::trace::Filter, String> {
    simulator::trace::Filter::parse(text)
}

fn usage_error(message: impl std::fmt::Display) -> ! {
    eprintln!("vopr: {message}");
    std::process::exit(2);
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                std::process::exit(0);
            }
            // clap's message and its tips ("a similar argument exists: '--seed'"), as one
            // line; its usage and help pointers are replaced by ours.
            let text = e.to_string();
            let message: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .filter(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
                .collect();
            let message = message.join(" ");
            usage_error(format!(
                "{}; run 'vopr --help' for usage",
                message.trim_start_matches("error: ")
            ));
        }
    };
    if let Some(level) = cli.log {
        // Colour only on a terminal: log files stay plain text.
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        tracing_subscriber::fmt()
            .with_max_level(level.filter())
            .with_writer(std::io::stderr)
            .with_target(false)
            .with_ansi(ansi)
            .init();
    }
    cluster::install_panic_hook();
    if let Some(command) = &cli.command {
        refuse_run_flags(&cli, command);
    }
    let code = match &cli.command {
        Some(Command::Replay {
            paths,
            timeline,
            trace,
        }) => replay(&cli, paths, timeline.as_deref(), trace.as_deref()),
        Some(Command::CheckHistory {
            file,
            json,
            memory_mb,
            timeline,
            jobs,
        }) => history_cli::check_history_file(
            file,
            *json,
            *memory_mb,
            *jobs as usize,
            timeline.as_deref(),
        ),
        Some(Command::Merge {
            files,
            seeds,
            json,
            summary,
            failures,
        }) => merge_files(files, seeds.clone(), *json, summary, failures),
        Some(Command::Shrink {
            input,
            budget_runs,
            budget_s,
            out,
        }) => {
            let request = simulator::shrink_cli::Request {
                input: input.clone(),
                budget_runs: *budget_runs,
                budget_s: *budget_s,
                out: out.clone(),
                artifacts: cli.artifacts.clone(),
            };
            simulator::shrink_cli::main(&request).unwrap_or_else(|e| usage_error(e))
        }
        None if cli.seeds.is_some() => run_range(&cli),
        None => run_one(&cli),
    };
    std::process::exit(code);
}

/// A subcommand takes none of the flags of a run: say so rather than ignore them.
fn refuse_run_flags(cli: &Cli, command: &Command) {
    let name = match command {
        Command::Replay { .. } => "replay",
        Command::CheckHistory { .. } => "check-history",
        Command::Merge { .. } => "merge",
        Command::Shrink { .. } => "shrink",
    };
    let flags = [
        ("--seed", cli.seed.is_some()),
        ("--seeds", cli.seeds.is_some()),
        ("--shard", cli.shard.is_some()),
        ("--ticks", cli.ticks.is_some()),
        ("--replicas", cli.replicas.is_some()),
        ("--clients", cli.clients.is_some()),
        ("--groups", cli.groups.is_some()),
        ("--lite", cli.lite),
        ("--bench", cli.bench),
        ("--set", !cli.overrides.is_empty()),
        ("--json", cli.json),
        ("--summary", cli.summary.is_some()),
        ("--trace", cli.trace.is_some()),
        ("--trace-filter", cli.trace_filter.is_some()),
        ("--history", cli.history.is_some()),
        ("--no-linearizability", cli.no_linearizability),
        ("--schedule-out", cli.schedule_out.is_some()),
        ("--timeline", cli.timeline.is_some()),
    ];
    if let Some((flag, _)) = flags.iter().find(|(_, set)| *set) {
        let own = match command {
            Command::Merge { .. } => ["--seeds", "--json", "--summary"].as_slice(),
            Command::CheckHistory { .. } => ["--json", "--timeline"].as_slice(),
            Command::Replay { .. } | Command::Shrink { .. } => [].as_slice(),
        };
        if own.contains(flag) {
            usage_error(format!(
                "{flag} before '{name}' belongs to a run; put it after: 'vopr {name} {flag} ...'"
            ));
        }
        usage_error(format!(
            "{flag} applies to a run, not to '{name}'; drop it (see 'vopr {name} --help')"
        ));
    }
}

fn overrides(cli: &Cli) -> Vec<(String, String)> {
    let mut list: Vec<(String, String)> = cli
        .overrides
        .iter()
        .map(|o| parse_override(o).unwrap_or_else(|e| usage_error(e)))
        .collect();
    let mut push = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            list.push((k.to_string(), v));
        }
    };
    push("ticks_safety", cli.ticks.map(|t| t.to_string()));
    push("replica_count", cli.replicas.map(|r| r.to_string()));
    push("client_count", cli.clients.map(|c| c.to_string()));
    push("group_count", cli.groups.map(|g| g.to_string()));
    list
}

fn options_for(cli: &Cli, seed: u64, overrides: &[(String, String)]) -> Result<Options, String> {
    let mut options = if cli.bench {
        Options::benchmark(seed)
    } else {
        Options::from_seed(seed)
    };
    if cli.lite {
        options = options.without_faults();
    }
    for (k, v) in overrides {
        options.set(k, v)?;
    }
    options.validate()?;
    Ok(options)
}

/// The flags a run's seeds run with (all but the seed), as the replay command gives them.
fn run_flags(cli: &Cli) -> String {
    let mut flags = Vec::new();
    if cli.lite {
        flags.push("--lite".to_string());
    }
    if cli.bench {
        flags.push("--bench".to_string());
    }
    for (k, v) in overrides(cli) {
        flags.push(format!("--set {k}={v}"));
    }
    if cli.no_linearizability {
        flags.push("--no-linearizability".to_string());
    }
    flags.join(" ")
}

/// Prints a replayed file's line (its outcome against the expected one, its hash, events of
/// its schedule that never came), and the report when it differs. Returns whether it matched.
fn print_replayed(file: &seeds::SeedFile, summary: &Summary) -> bool {
    let ok = summary.outcome == file.expect;
    let skipped = match summary.replay_skipped {
        0 => String::new(),
        n => format!(" ({n} schedule events never came)"),
    };
    outln!(
        "{} seed {}: {} (expected {}) hash={}{skipped}{}",
        file.path.display(),
        file.seed,
        summary.outcome.name(),
        file.expect.name(),
        summary.trace_hash,
        if ok { "" } else { "  DIFFERENT" }
    );
    if !ok {
        out!(
            "{}",
            cli::report(summary, &format!("vopr replay {}", file.path.display()))
        );
    }
    ok
}

/// `vopr replay FILE --timeline PAGE --trace EVENTS`: one kept run, replayed, drawn and traced.
fn replay_one(
    files: &[seeds::SeedFile],
    timeline: Option<&std::path::Path>,
    trace: Option<&std::path::Path>,
) -> i32 {
    let [file] = files else {
        usage_error(format!(
            "--timeline and --trace are of one run: give one file, not {} (e.g. 'vopr replay seeds/schedules/X.schedule.jsonl --timeline t.html')",
            files.len()
        ));
    };
    let page = timeline.map(|path| (path, create(path, "--timeline")));
    let events = trace.map(|path| {
        Box::new(std::io::BufWriter::new(create(path, "--trace"))) as Box<dyn Write + Send>
    });
    let options = file.options().unwrap_or_else(|e| usage_error(e));
    let config = RunConfig {
        timeline: page.is_some(),
        trace: events,
        replay: file.schedule.as_ref().map(|s| s.events.clone()),
        ..RunConfig::default()
    };
    let summary = run_seed(file.seed, &options, config);
    if let (Some((path, page)), Some(_)) = (page, &summary.timeline) {
        simulator::timeline::write_run(path, page, &summary).unwrap_or_else(|e| usage_error(e));
    }
    if let (Some(path), Some(error)) = (trace, &summary.trace_error) {
        usage_error(format!(
            "cannot write the trace to {}: {error}",
            path.display()
        ));
    }
    let ok = print_replayed(file, &summary);
    for (what, path) in [("timeline", timeline), ("trace", trace)] {
        if let Some(path) = path {
            outln!("{what}: {}", path.display());
        }
    }
    if ok {
        0
    } else {
        1
    }
}

fn replay_command(cli: &Cli, seed: u64) -> String {
    let flags = run_flags(cli);
    let mut command = format!("cargo run --release --bin vopr -- --seed {seed}");
    if !flags.is_empty() {
        command.push(' ');
        command.push_str(&flags);
    }
    command
}

fn random_seed() -> u64 {
    // Choosing the seed is outside the run; the run itself never reads a clock.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ (std::process::id() as u64) << 32
}

fn create(path: &std::path::Path, what: &str) -> std::fs::File {
    std::fs::File::create(path).unwrap_or_else(|e| {
        usage_error(format!(
            "cannot create the {what} file {}: {e}; pick a writable path",
            path.display()
        ))
    })
}

fn run_one(cli: &Cli) -> i32 {
    let seed = cli.seed.unwrap_or_else(random_seed);
    // Output files are created before anything runs, so a bad path fails at once.
    let trace = cli.trace.as_ref().map(|path| {
        Box::new(std::io::BufWriter::new(create(path, "--trace"))) as Box<dyn Write + Send>
    });
    let history_file = cli
        .history
        .as_ref()
        .map(|path| (path, create(path, "--history")));
    // With --json, stdout holds the JSON object only; the header goes to stderr, so a person
    // still sees which seed runs.
    if cli.json {
        eprintln!("vopr {VERSION} seed {seed}");
    } else {
        outln!("vopr {VERSION} seed {seed}");
    }
    let overrides = overrides(cli);
    let options = options_for(cli, seed, &overrides).unwrap_or_else(|e| usage_error(e));
    if !cli.json {
        outln!(
            "options: {}",
            serde_json::to_string(&options).expect("options serialize")
        );
    }
    let config = RunConfig {
        node_kind: None,
        trace,
        keep_history: cli.history.is_some(),
        skip_linearizability: cli.no_linearizability,
        replay: None,
        trace_filter: cli.trace_filter.clone().unwrap_or_default(),
        timeline: cli.timeline.is_some(),
    };
    let timeline_file = cli
        .timeline
        .as_ref()
        .map(|path| (path, create(path, "--timeline")));
    let schedule_file = cli
        .schedule_out
        .as_ref()
        .map(|path| (path, create(path, "--schedule-out")));
    let mut summary = run_seed(seed, &options, config);
    summary.replay = Some(replay_command(cli, seed));
    if let (Some(path), Some(error)) = (&cli.trace, &summary.trace_error) {
        usage_error(format!(
            "cannot write the trace to {}: {error}; pick a writable path",
            path.display()
        ));
    }
    if let (Some((path, mut file)), Some(history)) = (history_file, &summary.history_jsonl) {
        file.write_all(history.as_bytes())
            .and_then(|()| file.flush())
            .unwrap_or_else(|e| usage_error(format!("cannot write {}: {e}", path.display())));
    }
    if let Some((path, mut file)) = schedule_file {
        file.write_all(schedule_of(&summary).to_jsonl().as_bytes())
            .and_then(|()| file.flush())
            .unwrap_or_else(|e| usage_error(format!("cannot write {}: {e}", path.display())));
    }
    if let Some((path, file)) = timeline_file {
        if summary.timeline.is_some() {
            simulator::timeline::write_run(path, file, &summary).unwrap_or_else(|e| usage_error(e));
        } else {
            // A harness bug: its own report and exit code matter more than the page.
            drop(file);
            std::fs::remove_file(path).ok();
            eprintln!(
                "vopr: no timeline written to {}: the run ended in a harness bug",
                path.display()
            );
        }
    }
    let artifact = write_artifact(cli, &summary);
    if cli.json {
        outln!(
            "{}",
            serde_json::to_string(&summary).expect("summary serializes")
        );
    } else {
        out!("{}", cli::report(&summary, &replay_command(cli, seed)));
    }
    if let Some(path) = artifact {
        eprintln!(
            "\nIts fault schedule: {} (replays with 'vopr replay {}'; keep it in seeds/ with \"expect\":\"pass\" once fixed)",
            path.display(),
            path.display()
        );
    }
    if summary.outcome != Outcome::Pass {
        // The seed file sets every option that differs from the seed's own (so --lite and
        // --bench runs are kept as they ran).
        let options = serde_json::to_value(&summary.options).expect("options serialize");
        let overrides = seeds::overrides_for(seed, &options).unwrap_or(overrides);
        eprintln!(
            "\nTo keep this seed, add a file to seeds/:\n{}",
            cli::seed_file(&summary, &overrides)
        );
    }
    summary.outcome.exit_code()
}

/// The fault schedule of a finished run, with what it found.
fn schedule_of(summary: &Summary) -> Schedule {
    let mut schedule = Schedule::new(
        summary.seed,
        summary.options.clone(),
        summary.schedule.clone(),
    );
    if summary.outcome != Outcome::Pass {
        schedule.header.found = Some(cli::found(summary));
    }
    schedule
}

/// A failing run writes its fault schedule to the artifacts folder; returns its path. A
/// folder that cannot be written is reported, not fatal: the report still stands.
fn write_artifact(cli: &Cli, summary: &Summary) -> Option<PathBuf> {
    if matches!(summary.outcome, Outcome::Pass | Outcome::HarnessBug) {
        return None;
    }
    let path = cli
        .artifacts
        .join(format!("seed-{}.schedule.jsonl", summary.seed));
    let written = std::fs::create_dir_all(&cli.artifacts)
        .and_then(|()| std::fs::write(&path, schedule_of(summary).to_jsonl()));
    match written {
        Ok(()) => Some(path),
        Err(e) => {
            eprintln!("vopr: cannot write {}: {e}", path.display());
            None
        }
    }
}

/// Runs one seed; a panic of the harness becomes that seed's `harness_bug` failure.
fn run_seed(seed: u64, options: &Options, config: RunConfig) -> Summary {
    // Every log line of this run names its seed (runs of a sweep interleave on --jobs > 1).
    let _span = tracing::info_span!("run", seed).entered();
    run::guard(seed, options, || {
        // For the tests of this path only: no option may make the harness panic.
        if std::env::var("VOPR_TEST_HARNESS_PANIC_SEED").is_ok_and(|s| s == seed.to_string()) {
            panic!("injected by VOPR_TEST_HARNESS_PANIC_SEED={seed}");
        }
        run::run(seed, options.clone(), config)
    })
}

/// Runs the `count` seeds of `tasks` on `jobs` threads (no more than there are seeds); calls
/// `emit` with each summary in seed order. Tasks are drawn lazily, as threads free up.
fn run_parallel(
    jobs: u64,
    skip_linearizability: bool,
    count: u64,
    tasks: impl Iterator<Item = Task> + Send,
    mut emit: impl FnMut(usize, Summary),
) {
    let tasks = Mutex::new(tasks.enumerate());
    let (tx, rx) = mpsc::channel::<(usize, Summary)>();
    let threads = jobs.clamp(1, count.max(1));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let tx = tx.clone();
            let tasks = &tasks;
            scope.spawn(move || loop {
                // A panic while drawing a task (building its options) is a harness bug the
                // hook has printed; the other threads go on.
                let next = tasks.lock().map(|mut t| t.next());
                let Ok(Some((i, (seed, options, replay)))) = next else {
                    break;
                };
                let config = RunConfig {
                    skip_linearizability,
                    replay,
                    ..RunConfig::default()
                };
                let summary = run_seed(seed, &options, config);
                if tx.send((i, summary)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let mut pending = std::collections::BTreeMap::new();
        let mut emitted = 0;
        for (i, summary) in rx {
            pending.insert(i, summary);
            while let Some(summary) = pending.remove(&emitted) {
                emit(emitted, summary);
                emitted += 1;
            }
        }
    });
}

fn run_range(cli: &Cli) -> i32 {
    let range = cli.seeds.clone().expect("checked");
    let shard = cli.shard.unwrap_or((0, 1));
    let overrides = overrides(cli);
    // Checks the options once before the sweep starts (an override is refused for every seed
    // alike); the seeds' own options are built lazily as threads free up.
    let total = shard_len(range.clone(), shard);
    if let Some(first) = shard_seeds(range.clone(), shard).next() {
        options_for(cli, first, &overrides).unwrap_or_else(|e| usage_error(e));
    }
    let tasks = shard_seeds(range.clone(), shard).map(|seed| {
        let options = options_for(cli, seed, &overrides).unwrap_or_else(|e| usage_error(e));
        (seed, options, None)
    });
    // The summary file is created before anything runs, so a bad path fails at once.
    let summary_file = cli
        .summary
        .as_ref()
        .map(|path| (path, create(path, "--summary")));
    let sweep = SweepInfo {
        start: range.start,
        end: range.end,
        shard: shard.0,
        shards: shard.1,
        flags: run_flags(cli),
    };
    let mut sweep_summary = SweepSummary::new(VERSION);
    sweep_summary.seeds = Some(format!("{}..{}", range.start, range.end));
    sweep_summary.shard = cli
        .shard
        .as_ref()
        .map(|_| format!("{}/{}", shard.0, shard.1));
    let started = std::time::Instant::now();
    let bar = progress_bar(total, cli.json);
    let mut worst = Outcome::Pass;
    run_parallel(
        cli.jobs,
        cli.no_linearizability,
        total,
        tasks,
        |_, mut summary| {
            summary.replay = Some(replay_command(cli, summary.seed));
            summary.sweep = Some(sweep.clone());
            let artifact = write_artifact(cli, &summary);
            sweep_summary.add(&SeedResult::of(&summary));
            worst = worse(worst, summary.outcome);
            if cli.json {
                outln!(
                    "{}",
                    serde_json::to_string(&summary).expect("summary serializes")
                );
            } else if summary.outcome != Outcome::Pass || bar.is_none() {
                let line = format!(
                    "seed {} {} ticks={} ops={} view_max={} crashes={} hash={}",
                    summary.seed,
                    summary.outcome.name(),
                    summary.ticks,
                    summary.ops_committed,
                    summary.view_max,
                    summary.crashes,
                    summary.trace_hash
                );
                match &bar {
                    Some(b) => b.println(line),
                    None => outln!("{line}"),
                }
                if summary.outcome != Outcome::Pass {
                    let replay = summary.replay.as_deref().unwrap_or_default();
                    let mut detail = cli::report(&summary, replay);
                    if let Some(path) = &artifact {
                        detail.push_str(&format!("  fault schedule: {}\n", path.display()));
                    }
                    match &bar {
                        Some(b) => b.println(detail),
                        None => outln!("{detail}"),
                    }
                }
            }
            if let Some(b) = &bar {
                b.inc(1);
            }
        },
    );
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    sweep_summary.set_elapsed(started.elapsed().as_secs_f64());
    sweep_summary.finish();
    if !cli.json {
        out!("{}", sweep_summary.human());
    }
    let json = sweep_summary.to_json();
    match summary_file {
        Some((path, mut file)) => {
            let text = serde_json::to_string_pretty(&json).expect("summary serializes");
            writeln!(file, "{text}")
                .and_then(|()| file.flush())
                .unwrap_or_else(|e| usage_error(format!("cannot write {}: {e}", path.display())));
        }
        None if cli.json => eprintln!("{json}"),
        None => {}
    }
    worst.exit_code()
}

/// `vopr merge`: one summary of the shards' outputs; exit 1 if any seed failed, 2 on any
/// error (an unreadable file or line, a missing or duplicated seed, shards run differently).
fn merge_files(
    files: &[PathBuf],
    range: Option<Range<u64>>,
    json: bool,
    summary_path: &Option<PathBuf>,
    failures: &Option<PathBuf>,
) -> i32 {
    let summary_file = summary_path
        .as_ref()
        .map(|path| (path, create(path, "--summary")));
    if let Some(dir) = failures {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| {
            usage_error(format!(
                "cannot create the --failures folder {}: {e}; pick a writable path",
                dir.display()
            ))
        });
    }
    let merged = merge::merge(files, range).unwrap_or_else(|e| {
        // No summary file is left behind that could pass for one.
        if let Some((path, _)) = &summary_file {
            std::fs::remove_file(path).ok();
        }
        usage_error(e)
    });
    let summary = &merged.summary;
    if let Some(dir) = failures {
        // Every seed file is made before any is written: one that cannot be is an error.
        let mut seed_files = Vec::new();
        for f in &merged.failing {
            let overrides = match &f.options {
                Some(options) => seeds::overrides_for(f.seed, options)
                    .unwrap_or_else(|e| usage_error(format!("{}: {e}", f.location))),
                None => usage_error(format!(
                    "{}: seed {} has no options in its line; cannot write its seed file",
                    f.location, f.seed
                )),
            };
            let path = dir.join(format!("seed-{}.seed", f.seed));
            seed_files.push((path, cli::seed_file_text(&f.found, f.seed, &overrides)));
        }
        let lines: String = merged
            .failing
            .iter()
            .map(|f| format!("{}\n", f.line))
            .collect();
        seed_files.push((dir.join("failures.jsonl"), lines));
        for (path, text) in &seed_files {
            std::fs::write(path, text)
                .unwrap_or_else(|e| usage_error(format!("cannot write {}: {e}", path.display())));
        }
    }
    let value = summary.to_json();
    if json {
        outln!("{value}");
    } else {
        out!("{}", summary.human());
        if let Some(dir) = failures {
            outln!(
                "  {} seed file{} and failures.jsonl written to {}",
                merged.failing.len(),
                if merged.failing.len() == 1 { "" } else { "s" },
                dir.display()
            );
        }
    }
    if let Some((path, mut file)) = summary_file {
        let text = serde_json::to_string_pretty(&value).expect("summary serializes");
        writeln!(file, "{text}")
            .and_then(|()| file.flush())
            .unwrap_or_else(|e| usage_error(format!("cannot write {}: {e}", path.display())));
    }
    // As a sweep exits: undecided seeds alone are not a pass, yet no failure either.
    if summary.failed > summary.undecided {
        1
    } else if summary.undecided > 0 {
        4
    } else {
        0
    }
}

fn worse(a: Outcome, b: Outcome) -> Outcome {
    use Outcome::*;
    match (a, b) {
        (HarnessBug, _) | (_, HarnessBug) => HarnessBug,
        (Correctness, _) | (_, Correctness) => Correctness,
        (Liveness, _) | (_, Liveness) => Liveness,
        (Undecided, _) | (_, Undecided) => Undecided,
        _ => Pass,
    }
}

fn progress_bar(total: u64, json: bool) -> Option<indicatif::ProgressBar> {
    if json || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} seeds {elapsed} eta {eta}")
            .expect("template"),
    );
    Some(bar)
}

fn replay(
    cli: &Cli,
    paths: &[PathBuf],
    timeline: Option<&std::path::Path>,
    trace: Option<&std::path::Path>,
) -> i32 {
    if paths.is_empty() {
        usage_error("replay needs seed files or folders, e.g. 'vopr replay seeds/'");
    }
    let files = seeds::collect(paths).unwrap_or_else(|e| usage_error(e));
    if timeline.is_some() || trace.is_some() {
        return replay_one(&files, timeline, trace);
    }
    let tasks: Vec<Task> = files
        .iter()
        .map(|f| {
            let options = f.options().unwrap_or_else(|e| usage_error(e));
            (
                f.seed,
                options,
                f.schedule.as_ref().map(|s| s.events.clone()),
            )
        })
        .collect();
    let mut differences = 0;
    run_parallel(
        cli.jobs,
        false,
        tasks.len() as u64,
        tasks.into_iter(),
        |i, summary| {
            let file = &files[i];
            if summary.outcome != file.expect && file.schedule.is_none() {
                write_artifact(cli, &summary);
            }
            if !print_replayed(file, &summary) {
                differences += 1;
            }
        },
    );
    outln!(
        "replayed {} seed files: {} as expected, {} different",
        files.len(),
        files.len() - differences,
        differences
    );
    if differences > 0 {
        1
    } else {
        0
    }
}
