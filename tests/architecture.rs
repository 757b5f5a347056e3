//! The invariants of ARCHITECTURE.md, checked on the source so that they hold by test and
//! not by convention: the top-level modules form no import cycle; only `metrics/` names
//! Prometheus; only `providers/` knows a cloud's facts; only `reset-offsets` builds a
//! writer; only the `demo`/`simulator` commands use the simulator. (The one-clock rule is
//! a clippy `disallowed-methods` lint, see clippy.toml; signing purity is the
//! `kcle-cloud` crate having no I/O, clock or random dependency at all.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `src/`, with its production code only (unit-test modules cut).
fn sources() -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let code = match text.find("#[cfg(test)]\nmod tests") {
                Some(i) => text[..i].to_string(),
                None => match text.find("#[cfg(test)]\npub(crate) mod tests") {
                    Some(i) => text[..i].to_string(),
                    None => text,
                },
            };
            (p.strip_prefix(&src).unwrap().to_path_buf(), code)
        })
        .collect()
}

/// The top-level module a file belongs to (`providers/alibaba/mod.rs` -> `providers`).
fn module_of(path: &Path) -> String {
    let first = path
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// Lines that are code, not comments.
fn code_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter(|l| {
        let t = l.trim_start();
        !t.starts_with("//")
    })
}

#[test]
fn top_level_modules_form_no_import_cycle() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, text) in sources() {
        let from = module_of(&path);
        if from == "lib" || from == "main" {
            continue;
        }
        let deps = graph.entry(from.clone()).or_default();
        for line in code_lines(&text) {
            for (i, _) in line.match_indices("crate::") {
                let rest = &line[i + "crate::".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && name != from {
                    deps.insert(name);
                }
            }
        }
    }
    // Depth-first search for a back edge.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|n| n == node) {
            let mut cycle = path[i..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, &graph, &mut Vec::new(), &mut done) {
            panic!("import cycle: {}\ngraph: {graph:#?}", cycle.join(" -> "));
        }
    }
    // The layering the code map describes, spot-checked.
    let deps = |m: &str| graph.get(m).cloned().unwrap_or_default();
    for low in ["model", "store", "timelag"] {
        assert!(
            deps(low).iter().all(|d| d == "model"),
            "{low} depends on {:?}",
            deps(low)
        );
    }
    for m in ["providers", "scheduler", "store", "metrics", "config"] {
        for high in ["app", "commands", "exporter"] {
            assert!(!deps(m).contains(high), "{m} depends on {high}");
        }
    }
}

#[test]
fn only_metrics_names_prometheus() {
    for (path, text) in sources() {
        if module_of(&path) == "metrics" {
            continue;
        }
        for line in code_lines(&text) {
            assert!(
                !line.contains("prometheus::") && !line.contains("use prometheus"),
                "{}: {line}",
                path.display()
            );
        }
    }
}

#[test]
fn only_providers_know_a_clouds_facts() {
    let facts: Vec<&str> = kcle_cloud::Cloud::ALL
        .iter()
        .flat_map(|c| c.actions().iter().map(|a| a.name))
        .chain(
            kafka_cloud_lag_exporter::providers::profiles()
                .iter()
                .flat_map(|p| {
                    let env = p.credential_env;
                    [env.id, env.secret]
                        .into_iter()
                        .chain(env.token.iter().copied())
                        .chain(p.credential_variables.iter().copied())
                }),
        )
        .chain([
            "aliyuncs.com",
            "tencentcloudapi.com",
            "100.100.100.200",
            "metadata.tencentyun.com",
        ])
        .collect();
    for (path, text) in sources() {
        let module = module_of(&path);
        if module == "providers" {
            continue;
        }
        for line in code_lines(&text) {
            for fact in &facts {
                // Doc comments and help text may name an API; code may not use it.
                let quoted = format!("\"{fact}\"");
                assert!(
                    !line.contains(&quoted),
                    "{}: {line} uses {fact}",
                    path.display()
                );
            }
            // Matching on a cloud to learn a fact belongs in providers/ (and in the
            // simulator wiring of the demo command).
            if path != Path::new("commands/demo.rs") {
                assert!(
                    !line.contains("Cloud::Alibaba =>") && !line.contains("Cloud::Tencent =>"),
                    "{}: {line}",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn only_reset_offsets_builds_a_writer() {
    let mut callers = BTreeSet::new();
    for (path, text) in sources() {
        if code_lines(&text).any(|l| l.contains("build_writer(")) {
            callers.insert(path.display().to_string());
        }
    }
    assert_eq!(
        callers,
        BTreeSet::from([
            "commands/reset/mod.rs".to_string(),
            "providers/mod.rs".to_string()
        ])
    );
}

#[test]
fn only_the_demo_commands_use_the_simulator() {
    for (path, text) in sources() {
        if path == Path::new("commands/demo.rs") {
            continue;
        }
        assert!(
            !code_lines(&text).any(|l| l.contains("kcle_sim")),
            "{}",
            path.display()
        );
    }
}

#[test]
fn signing_crate_has_no_io_clock_or_random_dependency() {
    let manifest = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/cloud/Cargo.toml"),
    )
    .unwrap();
    let deps = manifest.split("[dependencies]").nth(1).unwrap();
    for banned in ["tokio", "reqwest", "fastrand", "uuid", "rand", "kcle-clock"] {
        assert!(
            !deps.lines().any(|l| l.starts_with(banned)),
            "kcle-cloud depends on {banned}"
        );
    }
}
