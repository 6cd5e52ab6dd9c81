//! `spflooder` against a real daemon, its output compared with what the
//! original Spread 4.4 `spflooder` printed for the same runs (transcript
//! in `tests/transcripts/spflooder.txt`, recorded by hand with the
//! original daemon and tool; see the harness's top comment).

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use spread_tools::mailbox::Mailbox;
use spread_wire::client::service::REG_MEMB_MESS;

use common::{check_transcript, join_transcripts, mask_block, mask_number_after, Daemon, Tool};

fn spflooder() -> PathBuf {
    match std::env::var_os("SPFLOODER_BIN") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_BIN_EXE_spflooder")),
    }
}

const WITHIN: Duration = Duration::from_secs(60);

fn flags(port: u16, flags: &[&str]) -> (String, Vec<String>) {
    let header = format!("spflooder {}", flags.join(" "));
    let args = flags
        .iter()
        .map(|f| f.replace("{port}", &port.to_string()))
        .collect();
    (header, args)
}

/// Run to the end; (header, output), checking the exit code.
fn run_one(port: u16, f: &[&str], code: i32) -> (String, Vec<u8>) {
    let (header, args) = flags(port, f);
    let (out, got) = Tool::start(&spflooder(), &args).finish(WITHIN);
    assert_eq!(
        got,
        Some(code),
        "{header}: exit code; output:\n{}",
        String::from_utf8_lossy(&out)
    );
    (header, out)
}

fn normalise(text: &str) -> String {
    let t = mask_number_after(text, "flooder: connecting to ", "<port>");
    // The original's usage and ours.
    mask_block(&t, "Usage: spflooder", &["\t[-wo]", "\t-wo"], "<usage>")
}

/// Read `probe`'s messages until a regular membership of `count` members.
fn wait_for_members(probe: &Mailbox, count: i32) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut groups = vec![[0u8; 32]; 100];
    let mut body = vec![0u8; 100_000];
    loop {
        assert!(
            Instant::now() < deadline,
            "no membership of {count} in group flooder"
        );
        if probe.poll().unwrap_or(0) <= 0 {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        let r = probe.receive(0, &mut groups, &mut body);
        if let Some(d) = r.delivery {
            if d.service_type & REG_MEMB_MESS != 0 && d.num_groups == count {
                return;
            }
        }
    }
}

#[test]
fn spflooder_runs_like_the_original() {
    let daemon = Daemon::start("", &[]);
    let port = daemon.port;
    let mut parts = vec![
        run_one(port, &["-u", "f1", "-m", "2500", "-b", "100", "-s", "{port}"], 0),
        run_one(
            port,
            &["-u", "w1", "-wo", "-m", "1500", "-b", "10", "-s", "{port}"],
            0,
        ),
        run_one(
            port,
            &["-u", "m1", "-n", "1", "-m", "1200", "-b", "20", "-s", "{port}"],
            0,
        ),
    ];

    // A reader of the group, then a writer to it once the reader's join
    // is done (a probe member of the group sees it).
    let probe = Mailbox::connect(port.to_string().as_bytes(), b"probe", true, None).expect("probe");
    probe.join(b"flooder").expect("probe join");
    wait_for_members(&probe, 1);
    let (reader_header, reader_args) = flags(
        port,
        &["-u", "r1", "-ro", "-m", "1500", "-b", "50", "-s", "{port}"],
    );
    let reader = Tool::start(&spflooder(), &reader_args);
    wait_for_members(&probe, 2);
    parts.push(run_one(
        port,
        &["-u", "w2", "-wo", "-m", "1500", "-b", "50", "-s", "{port}"],
        0,
    ));
    probe.disconnect();
    let (out, code) = reader.finish(WITHIN);
    assert_eq!(code, Some(0), "reader: {}", String::from_utf8_lossy(&out));
    parts.push((reader_header, out));

    parts.push(run_one(port, &["-x"], 1));
    parts.push(run_one(port, &["-n", "101"], 1));
    drop(daemon);
    parts.push(run_one(port, &["-u", "late", "-s", "{port}"], 1));
    check_transcript("spflooder.txt", &join_transcripts(&parts), &normalise);
}
