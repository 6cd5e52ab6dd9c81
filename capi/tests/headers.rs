//! The headers in `include/` against the library: structure layouts,
//! prototypes (via cbindgen and the C compiler) and exported symbols.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::*;

/// Every function the issue lists, which `nm -D` must show.
const REQUIRED: &[&str] = &[
    "SP_version",
    "SP_set_auth_method",
    "SP_set_auth_methods",
    "SP_connect",
    "SP_connect_timeout",
    "SP_disconnect",
    "SP_kill",
    "SP_join",
    "SP_leave",
    "SP_multicast",
    "SP_scat_multicast",
    "SP_multigroup_multicast",
    "SP_multigroup_scat_multicast",
    "SP_receive",
    "SP_scat_receive",
    "SP_get_memb_info",
    "SP_get_vs_sets_info",
    "SP_get_vs_set_members",
    "SP_scat_get_memb_info",
    "SP_scat_get_vs_sets_info",
    "SP_scat_get_vs_set_members",
    "SP_poll",
    "SP_equal_group_ids",
    "SP_error",
    "SP_query_groups",
    "SP_query_members",
    "SP_get_gid_offset_memb_mess",
    "SP_get_num_vs_offset_memb_mess",
    "SP_get_vs_set_offset_memb_mess",
    "E_init",
    "E_attach_fd",
    "E_detach_fd",
    "E_queue",
    "E_dequeue",
    "E_handle_events",
    "E_exit_events",
    "E_get_time",
    "E_add_time",
    "E_sub_time",
    "E_compare_time",
    "E_delay",
    "E_set_active_threshold",
    "E_activate_fd",
    "E_deactivate_fd",
    "E_num_active",
];

/// Exported like the original, but (like the original) not declared in sp.h.
const UNDECLARED: &[&str] = &[
    "SP_query_groups",
    "SP_query_members",
    "E_in_queue",
    "E_detach_fd_priority",
    "E_exit_events_async_safe",
];

fn cc_cmd() -> Command {
    Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
}

#[test]
fn layouts_match_the_original() {
    let tmp = TempDir::new("layout");
    let out = cc_cmd()
        .args(["-std=c11", "-Wall", "-Werror", "-c", "-o"])
        .arg(tmp.path().join("layout.o"))
        .arg("-I")
        .arg(include_dir())
        .arg(compat_dir().join("layout_asserts.c"))
        .output()
        .expect("run cc");
    assert!(
        out.status.success(),
        "layout static asserts failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Names of the functions declared (or defined) in C text.
fn function_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (i, _) in text.match_indices('(') {
        let before = text[..i].trim_end();
        let start = before
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(0, |p| p + 1);
        let word = &before[start..];
        if (word.starts_with("SP_") || word.starts_with("E_"))
            && !text[..start].trim_end().ends_with("define")
        {
            names.insert(word.to_string());
        }
    }
    names
}

fn header_text(name: &str) -> String {
    std::fs::read_to_string(include_dir().join(name)).expect("read header")
}

#[test]
fn cbindgen_prototypes_match_the_headers() {
    let crate_dir = env!("CARGO_MANIFEST_DIR");
    let mut config = cbindgen::Config {
        language: cbindgen::Language::C,
        style: cbindgen::Style::Type,
        include_guard: Some("SPREAD_CAPI_GENERATED".into()),
        ..Default::default()
    };
    // Functions only (and the callback typedefs they use): the structures
    // come from sp.h, whose declarations the generated ones must agree with.
    config.export.item_types = vec![cbindgen::ItemType::Functions, cbindgen::ItemType::Typedefs];
    let bindings = cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen runs over capi/");
    let tmp = TempDir::new("cbindgen");
    let generated = tmp.path().join("generated.h");
    bindings.write_to_file(&generated);
    let gen_text = std::fs::read_to_string(&generated).expect("read generated");

    // Same set of functions, apart from the two the original leaves undeclared.
    let exported = function_names(&gen_text);
    let declared: BTreeSet<String> = function_names(&header_text("sp_func.h"))
        .union(&function_names(&header_text("sp_events.h")))
        .cloned()
        .collect();
    let missing: Vec<_> = declared.difference(&exported).collect();
    assert!(
        missing.is_empty(),
        "declared in include/ but not exported: {missing:?}"
    );
    let extra: Vec<_> = exported
        .difference(&declared)
        .filter(|n| !UNDECLARED.contains(&n.as_str()))
        .collect();
    assert!(
        extra.is_empty(),
        "exported but not declared in include/: {extra:?}"
    );
    for r in REQUIRED {
        assert!(exported.contains(*r), "{r} is not exported");
    }

    // Same types: C rejects a redeclaration with other parameter or return types.
    let unit = tmp.path().join("both.c");
    std::fs::write(
        &unit,
        format!(
            "#include \"sp.h\"\n#include \"{}\"\nint prototypes_agree(void) {{ return 1; }}\n",
            generated.display()
        ),
    )
    .expect("write unit");
    let out = cc_cmd()
        .args(["-std=c11", "-Wall", "-Werror", "-fsyntax-only"])
        // `char x[32]` and `char *x` are the same parameter type; only the spelling differs.
        .args(["-Wno-unknown-warning-option", "-Wno-array-parameter"])
        .arg("-I")
        .arg(include_dir())
        .arg(&unit)
        .output()
        .expect("run cc");
    assert!(
        out.status.success(),
        "generated prototypes disagree with include/:\n{}\n--- generated:\n{gen_text}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn shared_library_exports_every_symbol() {
    let lib = built_library();
    let out = Command::new("nm")
        .arg("-D")
        .arg("--defined-only")
        .arg(&lib)
        .output()
        .expect("run nm");
    assert!(out.status.success(), "nm failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let defined: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_addr, kind, name) = (f.next()?, f.next()?, f.next()?);
            (kind == "T").then_some(name)
        })
        .collect();
    let missing: Vec<_> = REQUIRED.iter().filter(|s| !defined.contains(*s)).collect();
    assert!(missing.is_empty(), "nm -D lacks {missing:?}");
}

#[test]
fn shared_library_has_the_original_soname() {
    let out = Command::new("readelf")
        .arg("-d")
        .arg(built_library())
        .output()
        .expect("run readelf");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.contains("SONAME") && l.contains("[libspread.so.3]")),
        "soname is not libspread.so.3:\n{text}"
    );
}
