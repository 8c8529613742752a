//! `connector-host` run as a child process and watched: its exit code, output, time and
//! peak memory (`VmHWM`, sampled every 20 ms from /proc), with a deadline so that a case
//! that hangs fails instead of hanging the suite.

use std::ffi::OsString;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

/// What one run of the binary did.
pub struct Run {
    /// Its exit code.
    pub code: i32,
    /// What it printed on stdout.
    pub stdout: String,
    /// What it printed on stderr.
    pub stderr: String,
    /// From start to exit.
    pub elapsed: Duration,
    /// Peak resident memory (`VmHWM`), as last seen before the process exited.
    pub peak_rss_mib: f64,
}

impl Run {
    /// Both streams, for assertion messages.
    pub fn output(&self) -> String {
        format!("exit {}\n--- stdout\n{}\n--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

/// Runs `connector-host args` with `env` added (and no key, password or log filter from
/// the test's own environment), failing the test if it outlives `deadline`.
pub async fn watched(args: &[&str], env: &[(&str, OsString)], deadline: Duration) -> Run {
    let started = Instant::now();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_connector-host"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env_remove("QLIK_API_KEY")
        .env_remove("PGPASSWORD")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id().unwrap());
    let drain = |mut pipe: Box<dyn tokio::io::AsyncRead + Unpin + Send>| {
        tokio::spawn(async move {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes).await;
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let mut peak_kib = 0u64;
    let status = loop {
        if let Ok(status) = std::fs::read_to_string(&status_file)
            && let Some(kib) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak_kib = peak_kib.max(kib);
        }
        tokio::select! {
            status = child.wait() => break status.unwrap(),
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
        assert!(started.elapsed() < deadline, "connector-host {args:?} still running after {deadline:?}");
    };
    Run {
        code: status.code().expect("exited, not killed"),
        stdout: stdout.await.unwrap(),
        stderr: stderr.await.unwrap(),
        elapsed: started.elapsed(),
        peak_rss_mib: peak_kib as f64 / 1024.0,
    }
}
