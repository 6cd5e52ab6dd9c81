//! The daemon's modules depend on each other one way only.
//!
//! Reads every `crate::<module>` path in the daemon's sources (comments and
//! test code left out) and checks that the graph between the top-level
//! modules has no cycle, and that the sans-IO engines stay below the I/O
//! layers above them: the ring, the membership algorithm and their leaves
//! (clock, timers, ring configuration, packet store) never name the session
//! and groups engine, the monitor, the shell, the OS layer or the sockets.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The top-level module a source file belongs to (`ring/protocol.rs` ->
/// `ring`), or `None` for the crate root and binaries.
fn module_of(path: &Path) -> Option<String> {
    let rel = path.strip_prefix(src_dir()).ok()?;
    let first = rel
        .components()
        .next()?
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    match first.as_str() {
        "lib.rs" | "main.rs" | "bin" => None,
        f => Some(f.trim_end_matches(".rs").to_string()),
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The modules each module names, from its non-test code.
fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in files {
        let Some(module) = module_of(&path) else { continue };
        if path.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let deps = graph.entry(module.clone()).or_default();
        for line in text.lines() {
            let code = line.trim_start();
            if code.starts_with("#[cfg(test)]") {
                break; // the file's test module comes last
            }
            if code.starts_with("//") {
                continue;
            }
            for (i, _) in code.match_indices("crate::") {
                let name: String = code[i + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && name != module {
                    deps.insert(name);
                }
            }
        }
    }
    graph
}

/// A cycle through `start`, if there is one.
fn cycle_from(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    fn walk(
        graph: &BTreeMap<String, BTreeSet<String>>,
        start: &str,
        at: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in graph.get(at).into_iter().flatten() {
            if next == start {
                path.push(next.clone());
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(graph, start, next, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_string()];
    walk(graph, start, start, &mut path, &mut BTreeSet::new()).then_some(path)
}

#[test]
fn the_module_graph_has_no_cycle() {
    let graph = dependencies();
    assert!(
        graph.contains_key("ring") && graph.contains_key("membership"),
        "{graph:?}"
    );
    let cycles: Vec<String> = graph
        .keys()
        .filter_map(|m| cycle_from(&graph, m))
        .map(|c| c.join(" -> "))
        .collect();
    assert!(cycles.is_empty(), "module cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_ring_and_membership_engines_stay_below_the_shell() {
    let graph = dependencies();
    let engines = [
        "ring",
        "membership",
        "packet_store",
        "timers",
        "ring_conf",
        "clock",
    ];
    // The layers above them: sessions and groups, the monitor, the I/O.
    let above = [
        "engine", "session", "groups", "monitor", "reload", "shell", "os", "network",
    ];
    let mut wrong = Vec::new();
    for e in engines {
        for dep in graph.get(e).into_iter().flatten() {
            if above.contains(&dep.as_str()) {
                wrong.push(format!("{e} -> {dep}"));
            }
        }
    }
    assert!(wrong.is_empty(), "engines naming a layer above them: {wrong:?}");
    let membership = &graph["membership"];
    assert!(
        !membership.contains("ring"),
        "membership must not call the ring: {membership:?}"
    );
    for leaf in ["packet_store", "timers", "ring_conf", "clock"] {
        let deps = &graph[leaf];
        assert!(
            !deps.contains("ring") && !deps.contains("membership"),
            "{leaf} is a leaf, but names {deps:?}"
        );
    }
}
