//! Seeds the engine-level fuzz targets (`fuzz/fuzz_targets/engine_*.rs`)
//! from the captures of the original (`../shared/spread4-wire` beside the
//! repository, or where SPREAD4_WIRE says). Run on demand:
//! `cargo test -p spread-daemon --test fuzz_corpus -- --ignored build_engine_fuzz_corpus`.
//! Each seed is one input in the target's record format, written to
//! `fuzz/corpus/<target>/capture-<hash>`.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

fn captures() -> Option<PathBuf> {
    let dir = std::env::var_os("SPREAD4_WIRE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/spread4-wire"));
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "captures missing under CI"
    );
    eprintln!("skipping: no captures at {}", dir.display());
    None
}

/// The lines of every `.jsonl` file under `dir`, file by file, in name order.
fn jsonl_files(dir: &Path) -> Vec<Vec<serde_json::Value>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("capture dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            std::fs::read_to_string(p)
                .expect("capture")
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect()
        })
        .collect()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok())
        .collect()
}

fn record(op: u8, bytes: &[u8]) -> Vec<u8> {
    let len = bytes.len().min(u16::MAX as usize) as u16;
    [&[op][..], &len.to_le_bytes(), &bytes[..usize::from(len)]].concat()
}

/// Datagrams d2 received (to 10.99.0.2 or the segment broadcast), in
/// capture order, cut into inputs of at most 8 KiB.
fn datagram_seeds(dir: &Path) -> BTreeSet<Vec<u8>> {
    let mut seeds = BTreeSet::new();
    for lines in jsonl_files(&dir.join("daemon")) {
        let mut seed = Vec::new();
        let mut last_t = 0.0;
        for v in &lines {
            let (Some(src), Some(dst), Some(h), Some(t)) = (
                v["src"].as_str(),
                v["dst"].as_str(),
                v["hex"].as_str(),
                v["t"].as_f64(),
            ) else {
                continue;
            };
            let (to, port) = dst.rsplit_once(':').unwrap_or((dst, ""));
            if src.starts_with("10.99.0.2:") || !(to == "10.99.0.2" || to == "10.99.0.255") {
                continue;
            }
            let token = port == "4804";
            let ticks = (((t - last_t) / 0.010).round() as i64).clamp(0, 127) as u8;
            last_t = t;
            let rec = record((ticks << 1) | u8::from(token), &hex(h));
            if seed.len() + rec.len() > 8192 && !seed.is_empty() {
                seeds.insert(std::mem::take(&mut seed));
            }
            seed.extend(rec);
        }
        if !seed.is_empty() {
            seeds.insert(seed);
        }
    }
    seeds
}

/// Each client capture as one input: its connections open, send what the
/// clients sent, and close, in capture order (connection N is slot N mod 4).
fn client_seeds(dir: &Path) -> BTreeSet<Vec<u8>> {
    let mut seeds = BTreeSet::new();
    for lines in jsonl_files(&dir.join("client")) {
        let mut seed = Vec::new();
        for v in &lines {
            let Some(conn) = v["conn"].as_u64() else { continue };
            let slot = (conn.saturating_sub(1) % 4) as u8;
            match (v["event"].as_str(), v["dir"].as_str(), v["hex"].as_str()) {
                (Some("open"), _, _) => seed.extend(record(slot | 1 << 2, &[])),
                (Some("close"), _, _) => seed.extend(record(slot | 2 << 2, &[])),
                (None, Some("c2d"), Some(h)) => seed.extend(record(slot, &hex(h))),
                _ => {}
            }
        }
        if !seed.is_empty() && seed.len() <= 64 * 1024 {
            seeds.insert(seed);
        }
    }
    seeds
}

/// Each monitor capture's segment-port datagrams to d1 or d2 (STATUS
/// queries, PARTITION, FC, RELOAD among the ring's packets), in order with
/// their spacing, cut at 8 KiB; each input under every flag byte
/// (DangerousMonitor on/off, alone/ring).
fn monitor_seeds(dir: &Path) -> BTreeSet<Vec<u8>> {
    let mut seeds = BTreeSet::new();
    for lines in jsonl_files(&dir.join("monitor")) {
        let mut inputs = Vec::new();
        let mut seed = Vec::new();
        let mut last_t = 0.0;
        for v in &lines {
            let (Some(src), Some(dst), Some(h), Some(t)) = (
                v["src"].as_str(),
                v["dst"].as_str(),
                v["hex"].as_str(),
                v["t"].as_f64(),
            ) else {
                continue;
            };
            if !["10.99.0.1:4803", "10.99.0.2:4803", "10.99.0.255:4803"].contains(&dst) {
                continue;
            }
            let foreign = !src.starts_with("10.99.0.");
            let ticks = (((t - last_t) / 0.010).round() as i64).clamp(0, 127) as u8;
            last_t = t;
            let rec = record((ticks << 1) | u8::from(foreign), &hex(h));
            if seed.len() + rec.len() > 8192 && !seed.is_empty() {
                inputs.push(std::mem::take(&mut seed));
            }
            seed.extend(rec);
        }
        if !seed.is_empty() {
            inputs.push(seed);
        }
        for input in inputs {
            for flags in 0..4u8 {
                seeds.insert([&[flags][..], &input].concat());
            }
        }
    }
    seeds
}

#[test]
#[ignore = "writes fuzz/corpus; run on demand"]
fn build_engine_fuzz_corpus() {
    let Some(dir) = captures() else { return };
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let targets: BTreeMap<&str, BTreeSet<Vec<u8>>> = [
        ("engine_datagrams", datagram_seeds(&dir)),
        ("engine_clients", client_seeds(&dir)),
        ("engine_monitor", monitor_seeds(&dir)),
    ]
    .into();
    for (target, seeds) in targets {
        assert!(!seeds.is_empty(), "no seeds for {target}");
        let at = out.join(target);
        std::fs::create_dir_all(&at).expect("corpus dir");
        for seed in &seeds {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            seed.hash(&mut h);
            std::fs::write(at.join(format!("capture-{:016x}", h.finish())), seed).expect("write seed");
        }
        eprintln!("{target}: {} seeds in {}", seeds.len(), at.display());
    }
}
