//! Prints the seed and `--set` flags a `scenario` fuzz input stands for, so a finding can be
//! replayed and debugged with vopr: `cargo run --example fuzz_input_options -- FILE
//! [--unbounded]` (the latter for inputs kept before the targets ran short).

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: fuzz_input_options FILE");
    let data = std::fs::read(&path).expect("readable input");
    // Inputs kept before the targets ran short mean their bug only unbounded.
    let budget = if std::env::args().any(|a| a == "--unbounded") {
        simulator::fuzz::Budget::Unbounded
    } else {
        simulator::fuzz::Budget::Short
    };
    let Some((seed, options)) = simulator::fuzz::scenario_options_with(&data, budget) else {
        eprintln!("{path}: too short to choose options");
        std::process::exit(2);
    };
    let json = serde_json::to_value(&options).expect("options serialize");
    let mut flags = vec![format!("--seed {seed}")];
    flatten("", &json, &mut flags);
    println!("vopr {}", flags.join(" "));
}

fn flatten(prefix: &str, value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        other => out.push(format!("--set {prefix}={other}")),
    }
}
