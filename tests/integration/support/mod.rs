//! Test support: the loopback server and helpers that run the real `scrape` binary with a clean
//! environment and a hard time limit, and parse what it printed.

pub mod server;
pub mod tls;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use server::TestServer;

/// No test run may take longer than this; a hang fails the test instead of the suite.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// The binary, with proxies and colour settings from the environment removed.
pub fn scrape() -> Command {
    isolated(Command::new(env!("CARGO_BIN_EXE_scrape")))
}

/// The binary run by `sh` after `setup` (e.g. `ulimit -Sn 64`), with the same clean environment.
pub fn scrape_after(setup: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("{setup} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_scrape"));
    isolated(cmd)
}

/// The binary run by `script` (util-linux, in every Debian) on a pseudo-terminal that is its
/// stdout and stderr, as when a user runs it by hand; the command's stdout is what the terminal
/// was sent, bar and lines together.
pub fn scrape_in_terminal(args: &[&str]) -> Command {
    let command = std::iter::once(env!("CARGO_BIN_EXE_scrape"))
        .chain(args.iter().copied())
        .map(|arg| format!("'{}'", arg.replace('\'', "'\\''")))
        .collect::<Vec<_>>()
        .join(" ");
    let mut cmd = isolated(Command::new("script"));
    cmd.args(["--quiet", "--return", "--command", &command, "/dev/null"])
        .env("NO_COLOR", "1");
    cmd
}

/// `cmd` without proxies and colour settings from the environment, stdin closed, output piped.
fn isolated(mut cmd: Command) -> Command {
    for var in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
        "NO_COLOR",
    ] {
        cmd.env_remove(var);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// What one run printed, and how it ended.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    /// The jsonl records, keyed by `url`.
    pub fn records(&self) -> HashMap<String, serde_json::Value> {
        self.stdout
            .lines()
            .map(|line| {
                let value: serde_json::Value =
                    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                (value["url"].as_str().expect("url field").to_string(), value)
            })
            .collect()
    }

    /// The single record of a one-URL run.
    pub fn record(&self) -> serde_json::Value {
        let records = self.records();
        assert_eq!(records.len(), 1, "expected one record:\n{}", self.stdout);
        records.into_values().next().expect("one record")
    }
}

/// A temporary file holding `lines`, one per line.
pub fn list(lines: &[String]) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    for line in lines {
        writeln!(file, "{line}").expect("write list");
    }
    file
}

/// Runs `scrape ARGS LIST` with `urls` in a list file and jsonl output.
pub fn run_jsonl(urls: &[String], args: &[&str]) -> Run {
    let file = list(urls);
    let mut cmd = scrape();
    cmd.args(["-f", "jsonl", "--no-progress"])
        .args(args)
        .arg(file.path());
    finish(cmd.spawn().expect("spawn scrape"))
}

/// Runs a prepared command to its end (bounded by `RUN_LIMIT`).
pub fn run(mut cmd: Command) -> Run {
    finish(cmd.spawn().expect("spawn scrape"))
}

/// Waits for a spawned child, reading its output on threads so a full pipe never blocks it.
pub fn finish(mut child: Child) -> Run {
    let started = Instant::now();
    let stdout = read_in_background(child.stdout.take());
    let stderr = read_in_background(child.stderr.take());
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            panic!("scrape ran longer than {RUN_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = started.elapsed();
    Run {
        code: status.code().unwrap_or(-1),
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
        elapsed,
    }
}

fn read_in_background(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        text
    })
}

/// Sends a signal to a child process by name (`INT`, `TERM`) with kill(1).
pub fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} failed");
}

/// Peak resident memory (VmHWM) of a running process, in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(PathBuf::from(format!("/proc/{pid}/status"))).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The mode a program's new file gets, 0666 less the umask that the binary inherits from this
/// process: what curl and wget2 give the files they write.
pub fn created_file_mode() -> u32 {
    let dir = tempfile::tempdir().expect("temp dir");
    let probe = dir.path().join("probe");
    std::fs::write(&probe, b"").expect("probe file");
    file_mode(&probe)
}

/// A file's permission bits.
pub fn file_mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    let metadata = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    metadata.permissions().mode() & 0o777
}
