//! Where a server's time goes: `perf record` on the process serving a
//! load, during an extra run of that load after the measured one (so the
//! figures in the report are never profiled ones), and its hottest
//! functions by self time as markdown.
//!
//! Needs a working `perf` (scripts/bench.sh installs it) and full size:
//! in quick mode, or without perf, the report says in one line why there
//! is no profile. Profiling never fails a benchmark.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tokio::process::Command;

/// Samples per second, per thread on a CPU.
const FREQUENCY: &str = "499";
/// Rows in each table.
const TOP: usize = 12;
/// Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on Linux).
const TICKS: f64 = 100.0;

/// The profiles of one benchmark, printed under one heading.
#[derive(Default)]
pub struct Profiles {
    sections: Vec<String>,
}

impl Profiles {
    pub fn new() -> Profiles {
        Profiles::default()
    }

    /// Runs `load` once more while perf records process `pid` (`server`
    /// says what it is), and keeps the result under `label`. Does nothing,
    /// not even the load, when profiling is off.
    pub async fn run<F: Future>(&mut self, label: &str, server: &str, pid: u32, load: F) {
        if unavailable().is_some() {
            return;
        }
        let profile = match pid {
            0 => Err("the server's process was not found".to_string()),
            _ => record(pid, load).await,
        };
        let section = match profile {
            Ok(p) => p.markdown(label, server),
            Err(e) => format!("**{label}**: no profile: {e}.\n"),
        };
        self.sections.push(section);
    }

    /// The heading and every profile, or the one line why there are none.
    pub fn print(&self) {
        println!("### Where the server's time goes (perf, self time)");
        println!();
        if let Some(why) = unavailable() {
            println!("Not profiled: {why}.");
            return;
        }
        println!(
            "`perf record -F {FREQUENCY} -g` on the process doing the work (serving the requests, or rebuilding), during an \
             extra run of the same load after the measured one (the figures above were not \
             profiled). Self time: samples in the function itself, not in what it calls; \
             percentages of all the process's samples. CPU in cores: CPU time ÷ wall time of \
             the run, from /proc."
        );
        for section in &self.sections {
            println!();
            print!("{section}");
        }
    }
}

/// Why there is no profiling here, if there is none (checked once).
fn unavailable() -> Option<&'static str> {
    static WHY: OnceLock<Option<&'static str>> = OnceLock::new();
    *WHY.get_or_init(|| {
        if super::quick() {
            return Some("quick mode");
        }
        // A dummy recording: perf is installed, and the kernel lets it sample.
        let Ok(dir) = tempfile::tempdir() else {
            return Some("no temporary directory for perf");
        };
        let works = std::process::Command::new("perf")
            .args(["record", "-F", FREQUENCY, "-g", "-o"])
            .arg(dir.path().join("check.data"))
            .args(["--", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        (!works).then_some("`perf record` does not work here (not installed, or not allowed)")
    })
}

/// What one recording found.
struct Profile {
    samples: u64,
    /// The event sampled ("cpu-clock" where there are no hardware counters).
    event: String,
    wall: Duration,
    cpu: Cpu,
    /// (self %, function, crate), hottest first, same names merged.
    functions: Vec<(f64, String, String)>,
    /// (self %, crate), largest first.
    crates: Vec<(f64, String)>,
    /// (% including what it calls, system call), largest first.
    syscalls: Vec<(f64, String)>,
}

async fn record<F: Future>(pid: u32, load: F) -> Result<Profile, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let data = dir.path().join("perf.data");
    let mut perf = Command::new("perf")
        .args([
            "record",
            "-F",
            FREQUENCY,
            "-g",
            "-p",
            &pid.to_string(),
            "-o",
        ])
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("perf record: {e}"))?;
    // Until perf has attached to every thread.
    tokio::time::sleep(Duration::from_millis(300)).await;
    if let Ok(Some(status)) = perf.try_wait() {
        return Err(format!("perf record exited at once ({status})"));
    }
    let before = Cpu::now(pid, perf.id());
    let started = Instant::now();
    load.await;
    let wall = started.elapsed();
    let cpu = Cpu::now(pid, perf.id()).since(&before, wall);
    // SIGINT: perf stops and writes its file.
    if let Some(id) = perf.id() {
        let _ = Command::new("kill")
            .args(["-INT", &id.to_string()])
            .status()
            .await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(60), perf.wait()).await;
    let (event, rows) = report(&data, "--no-children").await?;
    // With callees: the kernel's time under each system call.
    let (_, with_callees) = report(&data, "--children").await?;
    let syscalls = with_callees
        .into_iter()
        .filter_map(|(p, _, _, sym)| Some((p, sym.strip_prefix("[k] __x64_sys_")?.to_string())))
        .collect();
    let samples = rows.iter().map(|r| r.1).sum();
    let (functions, crates) = summarize(&rows);
    Ok(Profile {
        samples,
        event,
        wall,
        cpu,
        functions,
        crates,
        syscalls,
    })
}

/// One row of `perf report`: self %, samples, shared object, symbol.
type Row = (f64, u64, String, String);

/// `perf report` by shared object and symbol (`children`: "--children"
/// to count callees' samples too, or "--no-children"): the event and the
/// rows, largest first.
async fn report(data: &Path, children: &str) -> Result<(String, Vec<Row>), String> {
    let run = Command::new("perf")
        .args(["report", "--stdio", children, "-g", "none", "-n"])
        .args([
            "--sort",
            "dso,sym",
            "--percent-limit",
            "0",
            "-t",
            "\t",
            "-i",
        ])
        .arg(data)
        .env_remove("DEBUGINFOD_URLS")
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .map_err(|_| "perf report took over 5 minutes".to_string())?
        .map_err(|e| format!("perf report: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "# Samples: 2K of event 'cpu-clock:pppH'"
    let event = text
        .lines()
        .find_map(|l| l.strip_prefix("# Samples: ")?.split('\'').nth(1))
        .map(|e| e.split(':').next().unwrap_or(e).to_string())
        .unwrap_or_default();
    let rows: Vec<_> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut fields = l.split('\t');
            let percent = fields.next()?.trim().trim_end_matches('%').parse().ok()?;
            if children == "--children" {
                fields.next()?; // self %
            }
            let samples = fields.next()?.trim().parse().ok()?;
            let dso = fields.next()?.trim().to_string();
            let symbol = fields.next()?.trim().to_string();
            Some((percent, samples, dso, symbol))
        })
        .collect();
    if rows.is_empty() {
        return Err(format!("perf report found no samples ({})", out.status));
    }
    Ok((event, rows))
}

/// Merges rows that shorten to the same function; sums per crate.
#[allow(clippy::type_complexity)]
fn summarize(rows: &[Row]) -> (Vec<(f64, String, String)>, Vec<(f64, String)>) {
    let mut functions: HashMap<(String, String), f64> = HashMap::new();
    let mut crates: HashMap<String, f64> = HashMap::new();
    for (percent, _, dso, symbol) in rows {
        let (kind, name) = symbol.split_once(' ').unwrap_or(("", symbol));
        let krate = crate_of(dso, kind, name);
        *functions.entry((shorten(name), krate.clone())).or_default() += percent;
        *crates.entry(krate).or_default() += percent;
    }
    let mut functions: Vec<_> = functions.into_iter().map(|((f, c), p)| (p, f, c)).collect();
    functions.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let mut crates: Vec<_> = crates.into_iter().map(|(c, p)| (p, c)).collect();
    crates.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    (functions, crates)
}

/// Whose code a sample is in: "kernel", a shared library ("libc"), or in
/// our statically linked binary the crate of the symbol's path ("tokio",
/// "sqlx_postgres", "verkosto_cases"), or for the C and assembly in it
/// "sqlite" or "ring" (signatures: the bearer tokens' Ed25519).
fn crate_of(dso: &str, kind: &str, symbol: &str) -> String {
    if kind == "[k]" || dso.starts_with("[kernel") {
        return "kernel".into();
    }
    if dso.contains(".so") {
        return dso.split(".so").next().unwrap_or(dso).to_string();
    }
    if symbol.starts_with("sqlite3") {
        return "sqlite".into();
    }
    let ring = [
        "ring_core_",
        "ge_",
        "fe_",
        "x25519_",
        "sc_",
        "sha512_block_data_order",
    ];
    if ring.iter().any(|p| symbol.starts_with(p)) {
        return "ring".into();
    }
    if symbol.starts_with("0x") {
        return "unknown".into();
    }
    // The type's path, or in `<T as Trait>` with a bare `T` the trait's.
    let path = symbol.trim_start_matches(['<', '&', '*']);
    let path = path.strip_prefix("dyn ").unwrap_or(path);
    std::iter::once(path)
        .chain(path.split_once(" as ").map(|(_, t)| t))
        .find_map(|p| {
            let head = p.split(['<', '>', ' ', '(']).next()?;
            Some(head.split_once("::")?.0.to_string())
        })
        .unwrap_or_else(|| "other".into())
}

/// A readable function name: no hash suffix (`::h0123abcd…`), paths inside
/// generic arguments reduced to their last segment, arguments nested deeper
/// than one level elided, at most 100 characters.
fn shorten(symbol: &str) -> String {
    let symbol = match symbol.rsplit_once("::h") {
        Some((head, hash)) if hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()) => {
            head
        }
        _ => symbol,
    };
    let mut out = String::new();
    let mut depth = 0usize;
    // Where the current path segment began in `out` (inside `<…>` only).
    let mut segment: Option<usize> = None;
    let mut chars = symbol.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '-' if chars.peek() == Some(&'>') => {
                chars.next();
                if depth < 2 {
                    out.push_str("->");
                }
            }
            '<' => {
                depth += 1;
                match depth {
                    1 => out.push('<'),
                    2 => out.push_str("<…"),
                    _ => {}
                }
                segment = Some(out.len());
            }
            '>' => {
                if depth <= 2 {
                    out.push('>');
                }
                depth = depth.saturating_sub(1);
                segment = None;
            }
            _ if depth >= 2 => {}
            ':' if depth == 1 && chars.peek() == Some(&':') => {
                chars.next();
                match segment {
                    Some(start) => out.truncate(start),
                    None => {
                        out.push_str("::");
                        segment = Some(out.len());
                    }
                }
            }
            ' ' | ',' | '(' | '&' | '*' | '[' | ';' => {
                out.push(c);
                segment = Some(out.len());
            }
            _ => out.push(c),
        }
    }
    if out.chars().count() > 100 {
        out = out.chars().take(99).collect::<String>() + "…";
    }
    out
}

/// CPU time so far, in clock ticks, of: the server, the bench's other
/// children (relay, consent, nats-server), perf, every `postgres` process,
/// this process (the load generator); and the machine's busy and total.
#[derive(Default)]
struct Cpu {
    /// None when the server was not in /proc (it had run to its end).
    server: Option<f64>,
    neighbours: f64,
    perf: f64,
    postgres: f64,
    load: f64,
    busy: f64,
    total: f64,
}

impl Cpu {
    fn now(server: u32, perf: Option<u32>) -> Cpu {
        let me = std::process::id();
        let mut cpu = Cpu::default();
        let processes = std::fs::read_dir("/proc").into_iter().flatten().flatten();
        for entry in processes {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Some((comm, ppid, ticks)) = stat(pid) else {
                continue;
            };
            if pid == server {
                cpu.server = Some(ticks);
            } else if Some(pid) == perf {
                cpu.perf += ticks;
            } else if pid == me {
                cpu.load += ticks;
            } else if comm == "postgres" {
                cpu.postgres += ticks;
            } else if ppid == me {
                cpu.neighbours += ticks;
            }
        }
        // The first line of /proc/stat: user nice system idle iowait irq softirq steal.
        let line = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let fields: Vec<f64> = line
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .take(8)
            .filter_map(|f| f.parse().ok())
            .collect();
        cpu.total = fields.iter().sum();
        cpu.busy = cpu.total - fields.get(3).unwrap_or(&0.0) - fields.get(4).unwrap_or(&0.0);
        cpu
    }

    /// From `before` to this, as cores (CPU seconds per wall second); the
    /// machine's share busy in `busy`.
    fn since(&self, before: &Cpu, wall: Duration) -> Cpu {
        let cores = |now: f64, then: f64| (now - then) / TICKS / wall.as_secs_f64();
        Cpu {
            server: self
                .server
                .zip(before.server)
                .map(|(now, then)| cores(now, then)),
            neighbours: cores(self.neighbours, before.neighbours),
            perf: cores(self.perf, before.perf),
            postgres: cores(self.postgres, before.postgres),
            load: cores(self.load, before.load),
            busy: (self.busy - before.busy) / (self.total - before.total).max(1.0),
            total: 0.0,
        }
    }
}

/// The command name, parent and CPU ticks (user + system) of a process.
fn stat(pid: u32) -> Option<(String, u32, f64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, rest) = text.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_string();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state, ppid, ... utime is field 14, stime 15 of stat(5).
    let ppid = fields.get(1)?.parse().ok()?;
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some((comm, ppid, ticks))
}

/// The child of this process whose command line has `args` in a row
/// (e.g. `["--target", "cases"]`).
pub fn child_with_args(args: &[&str]) -> Option<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            if stat(pid)?.1 != me {
                return None;
            }
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let argv: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            argv.windows(args.len())
                .any(|w| w.iter().zip(args).all(|(a, b)| *a == b.as_bytes()))
                .then_some(pid)
        })
}

impl Profile {
    fn markdown(&self, label: &str, server: &str) -> String {
        let c = &self.cpu;
        // A process run to its end (a rebuild) is gone from /proc by then;
        // its cpu-clock samples count its CPU time instead.
        let server_cpu = match c.server {
            Some(cores) => format!("server {cores:.2}"),
            None => {
                let hz: f64 = FREQUENCY.parse().unwrap_or(1.0);
                let from_samples = self.samples as f64 / hz / self.wall.as_secs_f64();
                format!("server {from_samples:.2} (from the samples: it had exited)")
            }
        };
        let others: Vec<String> = [
            ("its neighbours (relay, consent, nats-server)", c.neighbours),
            ("PostgreSQL", c.postgres),
            ("load generator", c.load),
            ("perf", c.perf),
        ]
        .iter()
        .filter(|(_, cores)| *cores >= 0.005)
        .map(|(name, cores)| format!("{name} {cores:.2}"))
        .collect();
        let cpu: Vec<String> = std::iter::once(server_cpu).chain(others).collect();
        let crates: Vec<String> = self
            .crates
            .iter()
            .take(8)
            .map(|(p, name)| format!("{name} {p:.0} %"))
            .collect();
        let mut md = format!(
            "**{label}**: {server}, {} samples of {} over {:.1} s.\n\
             CPU in cores ({} here): {}; the machine {:.0} % busy.\n\
             By crate: {}.\n",
            self.samples,
            self.event,
            self.wall.as_secs_f64(),
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu.join(", "),
            c.busy * 100.0,
            crates.join(", "),
        );
        if !self.syscalls.is_empty() {
            let calls: Vec<String> = self
                .syscalls
                .iter()
                .filter(|(p, _)| *p >= 0.5)
                .take(6)
                .map(|(p, name)| format!("{name} {p:.0} %"))
                .collect();
            md.push_str(&format!(
                "In system calls, with what they call: {}.\n",
                calls.join(", ")
            ));
        }
        if self.event == "cpu-clock" {
            md.push_str(
                "(cpu-clock: no hardware counters here, and a sample due while interrupts are \
                 off lands where they come back on, so kernel `finish_task_switch` and \
                 `_raw_spin_unlock_irqrestore` stand mostly for context switches and wake-ups.)\n",
            );
        }
        md.push_str("\n| self | function | crate |\n| ---: | --- | --- |\n");
        for (percent, function, krate) in self.functions.iter().take(TOP) {
            let function = function.replace('|', "\\|").replace('`', "'");
            md.push_str(&format!("| {percent:.1} % | `{function}` | {krate} |\n"));
        }
        md
    }
}
