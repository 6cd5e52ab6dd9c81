//! The extensions file (spread-rs.toml) and the rule that every spread.conf
//! of this repository holds only the original's grammar.

use std::path::{Path, PathBuf};

use spread_daemon::configuration::{ConfigError, Configuration, Extensions, EXTENSIONS_FILE_NAME};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A fresh directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("spread-ext-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const SEGMENT: &str = "Spread_Segment 127.0.0.255:4803 {\n\tlocalhost 127.0.0.1\n}\n";

#[test]
fn extensions_file_next_to_spread_conf_is_read() {
    let dir = TempDir::new("next");
    let conf = dir.write("spread.conf", SEGMENT);
    let conf_default = Configuration::load_with_extensions(&conf, None).unwrap();
    assert_eq!(conf_default.extensions, Extensions::default());
    assert_eq!(conf_default.extensions_file, None);

    let ext = dir.write(EXTENSIONS_FILE_NAME, "# ours\nMaxMessageBodyLength = 300_000\n");
    let c = Configuration::load_with_extensions(&conf, None).unwrap();
    assert_eq!(c.extensions.max_message_body, 300_000);
    assert_eq!(c.extensions_file.as_deref(), Some(ext.as_path()));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    // The extensions file does not change the ring's configuration hash.
    assert_eq!(c.hash(), conf_default.hash());
}

#[test]
fn explicit_extensions_file_must_exist() {
    let dir = TempDir::new("explicit");
    let conf = dir.write("spread.conf", SEGMENT);
    dir.write(EXTENSIONS_FILE_NAME, "MaxMessageBodyLength = 300000\n");
    let other = dir.write("other.toml", "MaxMessageBodyLength = 400000\n");
    let c = Configuration::load_with_extensions(&conf, Some(&other)).unwrap();
    assert_eq!(
        c.extensions.max_message_body, 400_000,
        "the flag's file wins over the one next to spread.conf"
    );

    let missing = dir.0.join("missing.toml");
    let e = Configuration::load_with_extensions(&conf, Some(&missing)).unwrap_err();
    assert!(matches!(e, ConfigError::Io { .. }), "{e}");
    assert!(e.to_string().starts_with(&missing.display().to_string()), "{e}");
}

#[test]
fn extensions_file_errors_have_file_and_line() {
    let dir = TempDir::new("errors");
    let conf = dir.write("spread.conf", SEGMENT);
    let ext = dir.write(
        EXTENSIONS_FILE_NAME,
        "MaxMessageBodyLength = 300000\n\nMaxSesions = 10\n",
    );
    let e = Configuration::load_with_extensions(&conf, None).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}:3:1: unknown key 'MaxSesions' (known keys: {})",
            ext.display(),
            Extensions::KEYS.join(", ")
        )
    );
}

#[test]
fn old_spread_conf_with_an_extension_line_still_works_with_a_warning() {
    let dir = TempDir::new("legacy");
    let conf = dir.write(
        "spread.conf",
        &format!("{SEGMENT}MaxMessageBodyLength = 250000\n"),
    );
    let c = Configuration::load_with_extensions(&conf, None).unwrap();
    assert_eq!(c.extensions.max_message_body, 250_000);
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    let new_place = dir.0.join(EXTENSIONS_FILE_NAME);
    assert!(c.warnings[0].starts_with(&format!("{}:4:1: MaxMessageBodyLength", conf.display())));
    assert!(
        c.warnings[0].contains(&new_place.display().to_string()),
        "{}",
        c.warnings[0]
    );

    // Both places: the extensions file's value wins, and that is said too.
    dir.write(EXTENSIONS_FILE_NAME, "MaxMessageBodyLength = 260000\n");
    let c = Configuration::load_with_extensions(&conf, None).unwrap();
    assert_eq!(c.extensions.max_message_body, 260_000);
    assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
    assert!(c.warnings[1].contains("also set in"), "{}", c.warnings[1]);

    // The grammar check refuses the line, naming where it belongs.
    let text = std::fs::read_to_string(&conf).unwrap();
    let e = Configuration::check_original_grammar(&text, "old.conf").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("old.conf:4:1: MaxMessageBodyLength is a spread-rs extension"),
        "{e}"
    );
    assert!(e.to_string().contains("spread-rs.toml"), "{e}");
}

/// The sample extensions file documents every key with its default value,
/// as commented examples that parse once uncommented.
#[test]
fn sample_extensions_file_shows_every_key_with_its_default() {
    let path = repo_root().join(EXTENSIONS_FILE_NAME);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(Extensions::parse(&text, "sample").unwrap(), Extensions::default());
    let examples: String = text
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .filter(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()))
        .map(|rest| format!("{rest}\n"))
        .collect();
    for key in Extensions::KEYS {
        assert!(
            examples.lines().any(|l| l.starts_with(key)),
            "sample has no example of {key}"
        );
    }
    let uncommented = Extensions::parse(&examples, "examples").unwrap_or_else(|e| panic!("{e}\n{examples}"));
    assert_eq!(uncommented, Extensions::default());
}

/// Every file of the repository that is not build output or a Git internal.
fn repo_files() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![repo_root()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                let skip = matches!(name.as_str(), "target" | ".git" | "node_modules" | "__pycache__")
                    || name.starts_with('.') && name != ".ci";
                if !skip {
                    stack.push(path);
                }
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Every configuration file of the repository (sample, packaging, tests)
/// must be one the original daemon reads.
#[test]
fn every_configuration_in_the_repository_has_only_the_original_grammar() {
    let confs: Vec<PathBuf> = repo_files()
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            // spread.conf, *.conf and copies like spread.conf.sample; not the
            // man page spread.conf.5.
            let man_page = p.parent().is_some_and(|d| d.ends_with("man"));
            name.ends_with(".conf") || name.starts_with("spread.conf") && !man_page
        })
        .collect();
    assert!(
        confs.iter().any(|p| p.ends_with("spread.conf")),
        "the sample spread.conf was not found among {confs:?}"
    );
    for conf in &confs {
        let text = std::fs::read_to_string(conf).unwrap_or_else(|e| panic!("{}: {e}", conf.display()));
        if let Err(e) = Configuration::check_original_grammar(&text, &conf.display().to_string()) {
            panic!("{e}");
        }
    }
}

/// Configurations written by the tests themselves (strings in test code and
/// scripts) must not use extension settings as spread.conf lines either;
/// only the tests of the old-file warning above do, on purpose.
#[test]
fn no_test_writes_an_extension_setting_into_spread_conf() {
    // The files that may spell an extension line: the extensions module and
    // its tests, this file (the old-file test), and the sample spread-rs.toml.
    let allowed = ["extensions.rs", EXTENSIONS_FILE_NAME, "configuration.rs"];
    let mut offenders = Vec::new();
    for path in repo_files() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let source = [".rs", ".py", ".c", ".h", ".sh", ".conf", ".toml"]
            .iter()
            .any(|ext| name.ends_with(ext));
        if !source || allowed.contains(&name.as_str()) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            for key in Extensions::KEYS {
                let setting = format!("{key} =");
                if line.contains(&setting) && !line.contains(EXTENSIONS_FILE_NAME) {
                    offenders.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "extension settings belong in spread-rs.toml, not in a spread.conf:\n{}",
        offenders.join("\n")
    );
}
