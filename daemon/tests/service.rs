//! The daemon under a `Type=notify` service manager: it sends `READY=1` to
//! `$NOTIFY_SOCKET` once it accepts clients, and `STOPPING=1` when it stops.

use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Cleanup {
    child: Option<Child>,
    paths: Vec<PathBuf>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for p in &self.paths {
            let _ = std::fs::remove_dir_all(p);
            let _ = std::fs::remove_file(p);
        }
    }
}

fn free_port() -> u16 {
    let seed = std::process::id() as u64 * 7919
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as u64)
            .unwrap_or(0);
    (0..2000u64)
        .map(|i| 30000 + ((seed + i * 104_729) % 9998) as u16)
        .find(|&port| {
            TcpListener::bind(("127.0.0.1", port)).is_ok()
                && UdpSocket::bind(("127.0.0.1", port)).is_ok()
                && UdpSocket::bind(("127.0.0.1", port + 1)).is_ok()
                && !std::path::Path::new(&format!("/tmp/{port}")).exists()
        })
        .expect("a free port")
}

#[test]
fn ready_is_sent_once_the_daemon_listens_and_stopping_at_exit() {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("spread-service-test-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut cleanup = Cleanup {
        child: None,
        paths: vec![
            dir.clone(),
            PathBuf::from(format!("/tmp/{port}")),
            PathBuf::from(format!("/tmp/{port}.seq")),
        ],
    };
    let conf = dir.join("spread.conf");
    std::fs::write(
        &conf,
        format!(
            "Spread_Segment 127.0.0.255:{port} {{\n\tlocalhost 127.0.0.1 {{ D 127.0.0.1 C 127.0.0.1 }}\n}}\n"
        ),
    )
    .unwrap();
    let socket_path = dir.join("notify");
    let manager = UnixDatagram::bind(&socket_path).unwrap();
    manager.set_read_timeout(Some(Duration::from_secs(10))).unwrap();

    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_spread"))
        .args(["-n", "localhost", "-c"])
        .arg(&conf)
        .env("NOTIFY_SOCKET", &socket_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    cleanup.child = Some(child);

    let mut buf = [0u8; 512];
    let n = manager.recv(&mut buf).expect("READY=1 within 10 s");
    let message = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(message.starts_with("READY=1\n"), "{message}");
    assert!(message.contains(&format!("MAINPID={pid}")), "{message}");
    // Ready means listening: a client connects at once.
    TcpStream::connect(("127.0.0.1", port)).expect("the daemon accepts clients once it said READY=1");
    assert!(std::path::Path::new(&format!("/tmp/{port}")).exists());
    eprintln!("READY=1 after {:?}", started.elapsed());

    sigterm(pid);
    let n = manager.recv(&mut buf).expect("STOPPING=1 within 10 s");
    assert_eq!(&buf[..n], b"STOPPING=1");
    let status = cleanup.child.take().unwrap().wait().unwrap();
    assert!(status.success(), "{status}");
}

/// SIGTERM through kill(1), keeping the test free of unsafe code.
fn sigterm(pid: u32) {
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}
