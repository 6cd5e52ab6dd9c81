//! The C programs of `compat-tests/`, compiled with `cc` against `include/`
//! and linked to our `libspread.so.3`, run against a daemon: ours (the
//! workspace's `spread` binary) or the one `SPREAD_DAEMON` names.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

const BINCOMPAT_C: &str = r#"
#include <stdio.h>
#include <string.h>
#include "sp.h"
int main(void)
{
    int a, b, c, ret;
    mailbox m;
    char pg[MAX_GROUP_NAME];
    sp_time t = {1, 0}, u = {0, 600000};
    if (SP_version(&a, &b, &c) != 1 || a != 4 || b != 4 || c != 0) return 10;
    ret = SP_connect_timeout("1@127.0.0.1", "x", 0, 1, &m, pg, t);
    if (ret != COULD_NOT_CONNECT) return 11;
    if (SP_poll(12345) != ILLEGAL_SESSION) return 12;
    if (E_compare_time(E_add_time(u, u), t) != 1) return 13;
    SP_error(ret);
    printf("loaded and ran\n");
    return 0;
}
"#;

/// A program linked against `libspread.so.3` by soname runs after being
/// moved elsewhere, finding the library through LD_LIBRARY_PATH only.
#[test]
fn binary_runs_moved_with_ld_library_path() {
    let build = TempDir::new("bincompat-build");
    let lib = lib_dir(&build);
    let src = build.path().join("app.c");
    std::fs::write(&src, BINCOMPAT_C).expect("write app.c");
    let exe = build.path().join("app");
    cc(&[src], &exe, &lib, &[]);

    let readelf = Command::new("readelf")
        .arg("-d")
        .arg(&exe)
        .output()
        .expect("readelf");
    let dynamic = String::from_utf8_lossy(&readelf.stdout);
    assert!(
        dynamic
            .lines()
            .any(|l| l.contains("NEEDED") && l.contains("[libspread.so.3]")),
        "app does not record libspread.so.3:\n{dynamic}"
    );
    assert!(!dynamic.contains("RPATH") && !dynamic.contains("RUNPATH"));

    // Move the program and the library to places unknown at link time.
    let run = TempDir::new("bincompat-run");
    let moved = run.path().join("bin");
    let libs = run.path().join("somewhere-else");
    std::fs::create_dir_all(&moved).expect("mkdir");
    std::fs::create_dir_all(&libs).expect("mkdir");
    std::fs::rename(&exe, moved.join("app")).expect("move app");
    std::fs::copy(lib.join("libspread.so.3"), libs.join("libspread.so.3")).expect("copy lib");
    drop(build);

    let without = run_limited(
        Command::new(moved.join("app")).env_remove("LD_LIBRARY_PATH"),
        None,
        Duration::from_secs(10),
    );
    assert!(!without.status.success(), "ran without finding the library?");

    let out = run_limited(
        Command::new(moved.join("app")).env("LD_LIBRARY_PATH", &libs),
        None,
        Duration::from_secs(10),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "app failed ({}): {stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout,
        "SP_error: (-2) Could not connect. Is Spread running?\nloaded and ran\n"
    );
}

/// What SP_error prints, code by code (the original library's texts).
const SP_ERROR_TEXTS: &str = "\
SP_error: (-1) Illegal spread was provided
SP_error: (-2) Could not connect. Is Spread running?
SP_error: (-3) Connection rejected, too many users
SP_error: (-4) Connection rejected, no name was supplied
SP_error: (-5) Connection rejected, illegal name
SP_error: (-6) Connection rejected, name not unique
SP_error: (-7) Connection rejected, library does not fit daemon
SP_error: (-8) Connection closed by spread
SP_error: (-9) Connection rejected, authentication failed
SP_error: (-10) unrecognized error
SP_error: (-11) Illegal session was supplied
SP_error: (-12) Illegal service request
SP_error: (-13) Illegal message
SP_error: (-14) Illegal group
SP_error: (-15) The supplied buffer was too short
SP_error: (-16) The supplied groups list was too short
SP_error: (-17) The message body + group names was too large to fit in a message
SP_error: (-18) The network socket experienced an error. This Spread mailbox will no longer work until the connection is disconnected and then reconnected
SP_error: (-19) Internal spread bug detected!
SP_error: (-20) unrecognized error
SP_error: (3) unrecognized error
";

/// Local sessions on our daemon take its record path.
#[test]
fn api_test_passes_against_the_daemon() {
    api_test(false);
}

/// The same with the library kept on the stream socket, as with the
/// original daemon (`SPREAD_LOCAL_STREAM=1`).
#[test]
fn api_test_passes_on_the_stream_path() {
    api_test(true);
}

fn api_test(stream_only: bool) {
    let Some(daemon) = daemon_or_skip("api_test") else {
        return;
    };
    let tmp = TempDir::new("api");
    let lib = lib_dir(&tmp);
    let exe = tmp.path().join("api_test");
    cc(&[compat_dir().join("api_test.c")], &exe, &lib, &["-lpthread"]);
    let out = run_limited(
        Command::new(&exe)
            .arg(daemon.tcp_name())
            .arg(daemon.unix_name())
            .env("LD_LIBRARY_PATH", &lib)
            .env("SPREAD_LOCAL_STREAM", if stream_only { "1" } else { "0" }),
        None,
        Duration::from_secs(120),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let failures: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert!(
        out.status.success() && failures.is_empty(),
        "api_test failed ({}):\n{}\n--- full output:\n{stdout}\n--- daemon log:\n{}",
        out.status,
        failures.join("\n"),
        daemon.log()
    );
    assert!(
        stdout.lines().filter(|l| l.starts_with("ok")).count() > 150,
        "too few checks ran:\n{stdout}"
    );
    let errors = stdout
        .split("--- SP_error\n")
        .nth(1)
        .and_then(|rest| rest.split("--- end").next())
        .expect("SP_error section");
    assert_eq!(errors, SP_ERROR_TEXTS);
}

#[test]
fn spuser_talks_to_itself_and_another() {
    let Some(daemon) = daemon_or_skip("spuser") else {
        return;
    };
    let tmp = TempDir::new("spuser");
    let lib = lib_dir(&tmp);
    let exe = tmp.path().join("spuser");
    cc(&[compat_dir().join("spuser.c")], &exe, &lib, &[]);
    let tag = std::process::id() % 100000;
    let (alice, bob_name) = (format!("al{tag}"), format!("bo{tag}"));
    let group = format!("chat{tag}");

    // bob joins and listens until alice is done; alice joins, talks, leaves.
    let mut bob = Command::new(&exe)
        .args(["-u", &bob_name, "-s", &daemon.unix_name()])
        .env("LD_LIBRARY_PATH", &lib)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start bob");
    let mut bob_in = bob.stdin.take().expect("bob stdin");
    std::io::Write::write_all(&mut bob_in, format!("j {group}\n").as_bytes()).expect("bob join");
    std::thread::sleep(Duration::from_millis(300));
    let script = format!(
        "v\nj {group}\ns {group} hello from alice\nm {group},#{bob_name}#localhost to both\np\nb {group} 3\nl {group}\n"
    );
    let a = run_limited(
        Command::new(&exe)
            .args(["-u", &alice, "-s", &daemon.tcp_name()])
            .env("LD_LIBRARY_PATH", &lib),
        Some(script.as_bytes()),
        Duration::from_secs(20),
    );
    // End of bob's input: he quits one second later.
    drop(bob_in);
    let b = wait_limited(bob, Duration::from_secs(20));
    let a_out = String::from_utf8_lossy(&a.stdout);
    let b_out = String::from_utf8_lossy(&b.stdout);
    assert!(a.status.success(), "alice: {a_out}");
    for want in [
        "library version 4.4.0".to_string(),
        format!("connected as #{alice}#localhost"),
        format!("membership JOIN of group {group}"),
        format!("received AGREED message from #{alice}#localhost, type 1, endian 0, to 1 groups (16 bytes): hello from alice"),
        format!("received SAFE message from #{alice}#localhost, type 2, endian 0, to 2 groups (7 bytes): to both"),
        "received FIFO message".to_string(),
        format!("left group {group}"),
    ] {
        assert!(a_out.contains(&want), "alice lacks {want:?}:\n{a_out}");
    }
    assert!(b.status.success(), "bob: {b_out}");
    assert!(
        b_out.contains(&format!("received AGREED message from #{alice}#localhost")),
        "bob did not hear alice (he may have left before she spoke):\n{b_out}"
    );
}

#[test]
fn spflooder_round_trip() {
    let Some(daemon) = daemon_or_skip("spflooder") else {
        return;
    };
    let tmp = TempDir::new("flooder");
    let lib = lib_dir(&tmp);
    let exe = tmp.path().join("spflooder");
    cc(&[compat_dir().join("spflooder.c")], &exe, &lib, &[]);
    let tag = std::process::id() % 100000;
    let group = format!("fl{tag}");

    // A receiver in the group, and a sender that also gets its own messages back.
    let mut rx = Command::new(&exe);
    rx.args([
        "-u",
        &format!("r{tag}"),
        "-s",
        &daemon.unix_name(),
        "-g",
        &group,
        "-m",
        "2000",
        "-b",
        "500",
        "-ro",
    ])
    .env("LD_LIBRARY_PATH", &lib);
    let rx_thread = std::thread::spawn(move || run_limited(&mut rx, None, Duration::from_secs(60)));
    std::thread::sleep(Duration::from_millis(500));
    let tx = run_limited(
        Command::new(&exe)
            .args([
                "-u",
                &format!("s{tag}"),
                "-s",
                &daemon.tcp_name(),
                "-g",
                &group,
                "-m",
                "2000",
                "-b",
                "500",
            ])
            .env("LD_LIBRARY_PATH", &lib),
        None,
        Duration::from_secs(60),
    );
    let rx = rx_thread.join().expect("receiver");
    let tx_out = String::from_utf8_lossy(&tx.stdout);
    let rx_out = String::from_utf8_lossy(&rx.stdout);
    assert!(tx.status.success(), "sender: {tx_out}");
    assert!(
        tx_out.contains("sent 2000 messages of 500 bytes") && tx_out.contains(", 0 bad"),
        "{tx_out}"
    );
    assert!(rx.status.success(), "receiver: {rx_out}");
    assert!(rx_out.contains("received 2000 messages of 500 bytes"), "{rx_out}");
}
