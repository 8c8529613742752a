//! Running a program to its end while sampling its peak memory, for the benchmarks that
//! time whole processes (`connector-host`, the `@qlik/api` script).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What a finished program printed, how long it ran and its peak resident memory.
pub struct Sampled {
    /// Its standard output.
    pub stdout: Vec<u8>,
    /// Start to exit: what a person or a scheduler waits for.
    pub wall: Duration,
    /// The highest `VmHWM` seen, in kB.
    pub peak_kb: u64,
    /// CPU time (user and system, all threads) at the last sample before it exited: what
    /// the program itself cost, apart from a simulator sharing the machine's cores.
    pub cpu: Duration,
}

/// Peak resident memory of `pid` in kB, while it is alive.
fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time of `pid` so far, user and system, while it is alive. /proc counts it in
/// USER_HZ ticks, which the kernel's ABI fixes at 100 a second on Linux.
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces:
    // utime and stime are the 14th and 15th fields, the 12th and 13th after `)`.
    let mut after = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let ticks: u64 = after.next()?.parse::<u64>().ok()? + after.next()?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Runs `command` to its end, its stderr passed through, reading `VmHWM` and CPU time from
/// /proc every 20 ms; panics with its output if it fails. Stdout is drained while it runs: output
/// larger than the pipe's buffer (many tenants' JSON) would otherwise block it forever.
pub async fn run_sampled(mut command: Command) -> Sampled {
    let started = Instant::now();
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("spawn");
    let pid = child.id();
    let mut stdout = child.stdout.take().expect("piped stdout");
    let drained = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut bytes).map(|_| bytes)
    });
    let (mut peak_kb, mut cpu) = (0, Duration::ZERO);
    while child.try_wait().expect("wait").is_none() {
        if let Some(kb) = vm_hwm_kb(pid) {
            peak_kb = peak_kb.max(kb);
        }
        cpu = cpu_time(pid).unwrap_or(cpu);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let wall = started.elapsed();
    let status = child.wait().expect("wait");
    let stdout = drained.join().expect("stdout reader").expect("read stdout");
    assert!(status.success(), "{command:?} failed: {}", String::from_utf8_lossy(&stdout));
    Sampled { stdout, wall, peak_kb, cpu }
}
