//! `spuser` driven through its standard input against a real daemon, its
//! output compared with what the original Spread 4.4 `spuser` printed for
//! the same input (transcripts in `tests/transcripts/`, recorded by hand
//! with the original daemon and tool: see the harness's top comment).
//!
//! Compared after normalising what differs from run to run (ports, the
//! time part of group ids, random private names) and the command menu,
//! whose wording is our own.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{check_transcript, join_transcripts, mask_block, mask_number_after, settle, Daemon, Tool};

fn spuser() -> PathBuf {
    match std::env::var_os("SPUSER_BIN") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_BIN_EXE_spuser")),
    }
}

/// Prompts a step makes clients print: (client, how many more "User> ").
type Prompts = &'static [(&'static str, usize)];

/// One step of a scripted session. After each step the runner waits for
/// the prompts it announces (each message and each command ends with
/// one), so the transcript does not depend on how fast the daemon is.
enum Step {
    /// Start client `name` with these flags (`{port}`: the daemon's port).
    Start(&'static str, &'static [&'static str], Prompts),
    /// Lines for a client's standard input, written together.
    Type(&'static str, &'static [&'static str], Prompts),
    /// Let the daemon deliver what is in flight.
    Sleep(u64),
    /// Close a client's standard input and wait for it to exit.
    Close(&'static str, Prompts),
    /// Wait for a client to exit on its own.
    AwaitExit(&'static str),
    /// Kill daemon `i` (SIGKILL).
    Kill(usize, Prompts),
}

use Step::*;

const PROMPT: &[u8] = b"User> ";

fn prompts_in(out: &[u8]) -> usize {
    out.windows(PROMPT.len()).filter(|w| *w == PROMPT).count()
}

struct Client {
    name: &'static str,
    header: String,
    tool: Option<Tool>,
    output: Option<Vec<u8>>,
    prompts: usize,
}

/// Run the steps against one daemon. Returns each client's header and
/// output, in start order.
fn run(steps: &[Step]) -> Vec<(String, Vec<u8>)> {
    run_on(vec![Daemon::start("", &[])], steps)
}

/// Run the steps against `daemons` (`{port}`, `{port2}`: their ports).
fn run_on(mut daemons: Vec<Daemon>, steps: &[Step]) -> Vec<(String, Vec<u8>)> {
    let ports: Vec<String> = daemons.iter().map(|d| d.port.to_string()).collect();
    let mut clients: Vec<Client> = Vec::new();
    let max = Duration::from_secs(10);
    for step in steps {
        let mut expect: Prompts = &[];
        match step {
            Start(name, flags, prompts) => {
                let args: Vec<String> = flags
                    .iter()
                    .map(|f| {
                        let f = f.replace("{port}", &ports[0]);
                        match ports.get(1) {
                            Some(p) => f.replace("{port2}", p),
                            None => f,
                        }
                    })
                    .collect();
                clients.push(Client {
                    name,
                    header: format!("{name}: spuser {}", flags.join(" ")),
                    tool: Some(Tool::start(&spuser(), &args)),
                    output: None,
                    prompts: 0,
                });
                expect = prompts;
            }
            Type(name, lines, prompts) => {
                let c = clients
                    .iter_mut()
                    .find(|c| c.name == *name)
                    .expect("a started client");
                let tool = c.tool.as_mut().expect("a running client");
                for l in *lines {
                    tool.send_line(l);
                }
                expect = prompts;
            }
            Sleep(ms) => std::thread::sleep(Duration::from_millis(*ms)),
            Close(name, _) | AwaitExit(name) => {
                let c = clients
                    .iter_mut()
                    .find(|c| c.name == *name)
                    .expect("a started client");
                let mut tool = c.tool.take().expect("a running client");
                if matches!(step, AwaitExit(_)) {
                    let deadline = Instant::now() + max;
                    while !tool.exited() && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    assert!(tool.exited(), "{name} did not exit on its own");
                }
                let (out, code) = tool.finish(max);
                assert_eq!(
                    code,
                    Some(0),
                    "{name} exit code; output:\n{}",
                    String::from_utf8_lossy(&out)
                );
                c.output = Some(out);
                if let Close(_, prompts) = step {
                    expect = prompts;
                }
            }
            Kill(i, prompts) => {
                daemons[*i].kill();
                expect = prompts;
            }
        }
        for (name, n) in expect {
            let c = clients
                .iter_mut()
                .find(|c| c.name == *name)
                .expect("a started client");
            c.prompts += n;
        }
        // Wait for the announced prompts, then a little longer for any
        // output nobody expected (it shows up in the comparison).
        let deadline = Instant::now() + max;
        while Instant::now() < deadline
            && clients.iter().any(|c| match &c.tool {
                Some(t) => prompts_in(&t.output()) < c.prompts,
                None => false,
            })
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        let running: Vec<&Tool> = clients.iter().filter_map(|c| c.tool.as_ref()).collect();
        settle(&running, Duration::from_millis(100), max);
    }
    clients
        .into_iter()
        .map(|c| {
            let out = match (c.output, c.tool) {
                (Some(o), _) => o,
                (None, Some(t)) => t.finish(max).0,
                (None, None) => panic!("{} has no output", c.name),
            };
            (c.header, out)
        })
        .collect()
}

fn normalise(text: &str) -> String {
    // The original's menu and ours.
    let t = mask_block(text, "==========", &["\tq -- quit"], "<menu>");
    let t = mask_block(&t, "----- spuser commands -----", &["\tq "], "<menu>");
    let t = mask_number_after(&t, "User: connected to ", "<port>");
    let t = mask_random_names(&t);
    t.lines()
        .map(|l| match l.strip_prefix("grp id is ") {
            // daemon id, membership time (differs per run), group index
            Some(rest) => {
                let w: Vec<&str> = rest.split(' ').collect();
                match w.as_slice() {
                    [daemon, _time, index] => format!("grp id is {daemon} <time> {index}\n"),
                    _ => format!("{l}\n"),
                }
            }
            None => format!("{l}\n"),
        })
        .collect()
}

/// Names the daemon picked for `-r`: `#r<digits>-<digits>#`.
fn mask_random_names(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("#r") {
        out.push_str(&rest[..i + 2]);
        let tail = &rest[i + 2..];
        let a = tail.bytes().take_while(u8::is_ascii_digit).count();
        let b = tail[a..]
            .strip_prefix('-')
            .map(|t| t.bytes().take_while(u8::is_ascii_digit).count());
        match b {
            Some(b) if a > 0 && b > 0 && tail[a + 1 + b..].starts_with('#') => {
                out.push_str("<random>");
                rest = &tail[a + 1 + b..];
            }
            _ => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

fn scenario(name: &str, steps: &[Step]) {
    let parts = run(steps);
    check_transcript(name, &join_transcripts(&parts), &normalise);
}

fn scenario_on(daemons: Vec<Daemon>, name: &str, steps: &[Step]) {
    let parts = run_on(daemons, steps);
    check_transcript(name, &join_transcripts(&parts), &normalise);
}

/// One user alone: every command, messages to itself, the burst, reading
/// turned off and on, polling, bad input.
#[test]
fn spuser_alone_every_command() {
    const A: &str = "alice";
    scenario(
        "spuser_alone.txt",
        &[
            Start(A, &["-u", "alice", "-s", "{port}"], &[(A, 1)]),
            Type(A, &["j g1"], &[(A, 2)]),
            Type(A, &["j"], &[(A, 1)]),
            Type(A, &["j this_group_name_is_far_too_long_for_spread"], &[(A, 1)]),
            Type(A, &["s g1", "hello"], &[(A, 2)]),
            Type(A, &["s g1 g2 nobody", "to three groups"], &[(A, 2)]),
            Type(A, &["m g1", "line one", "line two", ""], &[(A, 2)]),
            Type(A, &["b g1", "20"], &[(A, 11)]),
            Type(A, &["b", "x"], &[(A, 1)]),
            Type(A, &["d"], &[(A, 1)]),
            Type(A, &["s g1", "waits"], &[(A, 1)]),
            Sleep(1500),
            Type(A, &["p"], &[(A, 1)]),
            Type(A, &["r"], &[(A, 2)]),
            Type(A, &["p"], &[(A, 1)]),
            Type(A, &["e"], &[(A, 1)]),
            Type(A, &["j g2"], &[(A, 2)]),
            Type(A, &["l g1"], &[(A, 2)]),
            Type(A, &["s"], &[(A, 1)]),
            Type(A, &["zz"], &[(A, 1)]),
            Type(A, &[""], &[(A, 1)]),
            Type(A, &["q"], &[]),
            AwaitExit(A),
        ],
    );
}

/// Two users in a group: joins, leaves, messages both ways, a private
/// message, a refused duplicate name, a random name, disconnects.
#[test]
fn spuser_two_users_and_a_group() {
    const A: &str = "alice";
    const B: &str = "bob";
    const R: &str = "random";
    scenario(
        "spuser_two_users.txt",
        &[
            Start(A, &["-u", "alice", "-s", "{port}"], &[(A, 1)]),
            Start(B, &["-s", "{port}", "-u", "bob"], &[(B, 1)]),
            Type(A, &["j g"], &[(A, 2)]),
            Type(B, &["j g"], &[(A, 1), (B, 2)]),
            Type(A, &["s g", "hi bob"], &[(A, 2), (B, 1)]),
            Type(
                B,
                &["s g #alice#localhost", "to the group and to alice"],
                &[(A, 1), (B, 2)],
            ),
            Type(B, &["l g"], &[(A, 1), (B, 2)]),
            Type(B, &["j g"], &[(A, 1), (B, 2)]),
            Start("alice2", &["-u", "alice", "-s", "{port}"], &[]),
            AwaitExit("alice2"),
            Start(R, &["-r", "-s", "{port}"], &[(R, 1)]),
            Type(R, &["j g"], &[(A, 1), (B, 1), (R, 2)]),
            Type(R, &["b g", "5"], &[(A, 10), (B, 10), (R, 11)]),
            Close(R, &[(A, 1), (B, 1)]),
            Type(B, &["q"], &[(A, 1)]),
            AwaitExit(B),
            Close(A, &[]),
        ],
    );
}

/// The daemon goes away under a connected user; then nobody answers.
#[test]
fn spuser_daemon_goes_away() {
    const A: &str = "alice";
    scenario(
        "spuser_daemon_gone.txt",
        &[
            Start(A, &["-u", "alice", "-s", "{port}"], &[(A, 1)]),
            Type(A, &["j g"], &[(A, 2)]),
            Kill(0, &[]),
            AwaitExit(A),
            Start("late", &["-u", "late", "-s", "{port}"], &[]),
            AwaitExit("late"),
        ],
    );
}

/// A bad flag or a flag without its value prints the usage and exits 0.
#[test]
fn spuser_usage() {
    for args in [&["-x"][..], &["-u"], &["-s"]] {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let (out, code) = Tool::start(&spuser(), &args).finish(Duration::from_secs(10));
        assert_eq!(code, Some(0));
        let out = String::from_utf8_lossy(&out);
        assert!(out.starts_with("Usage: spuser"), "{out}");
        for flag in ["-u", "-s", "-r", "-n", "-p"] {
            assert!(out.contains(flag), "usage names {flag}: {out}");
        }
    }
}

/// Two daemons in a ring, a user on each in one group; the second daemon
/// dies: its user is cut off, the other sees the transitional and the
/// network notice with its vs set.
#[test]
fn spuser_network_change() {
    const A: &str = "alice";
    const B: &str = "bob";
    let daemons = common::start_ring(2);
    common::wait_for_ring(&[daemons[0].port, daemons[1].port]);
    scenario_on(
        daemons,
        "spuser_network.txt",
        &[
            Start(A, &["-u", "alice", "-s", "{port}"], &[(A, 1)]),
            Start(B, &["-u", "bob", "-s", "{port2}"], &[(B, 1)]),
            Type(A, &["j g"], &[(A, 2)]),
            Type(B, &["j g"], &[(A, 1), (B, 2)]),
            Type(B, &["s g", "before the split"], &[(A, 1), (B, 2)]),
            Kill(1, &[(A, 2)]),
            AwaitExit(B),
            Type(A, &["s g", "after the split"], &[(A, 2)]),
            Close(A, &[]),
        ],
    );
}
