//! The binaries themselves: sizes, the static glibc and musl builds and
//! an ELF check for whether a file needs a dynamic loader.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::procs;

/// What the program headers say about linking.
pub fn linkage(path: &Path) -> Result<&'static str, String> {
    let b = std::fs::read(path).map_err(|e| format!("reading '{}': {e}", path.display()))?;
    if b.len() < 64 || &b[..4] != b"\x7fELF" {
        return Err("not an ELF file".into());
    }
    if b[4] != 2 || b[5] != 1 {
        return Err("not a 64-bit little-endian ELF file".into());
    }
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(b[0x20..0x28].try_into().expect("8 bytes")) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    let (mut interp, mut dynamic) = (false, false);
    for i in 0..phnum {
        let o = phoff + i * phentsize;
        let Some(t) = b.get(o..o + 4) else {
            return Err("truncated program headers".into());
        };
        match u32::from_le_bytes(t.try_into().expect("4 bytes")) {
            3 => interp = true,  // PT_INTERP
            2 => dynamic = true, // PT_DYNAMIC
            _ => {}
        }
    }
    Ok(match (interp, dynamic) {
        (true, _) => "dynamic (PT_INTERP)",
        (false, true) => "static-pie (no PT_INTERP)",
        (false, false) => "static (no PT_INTERP)",
    })
}

pub fn size(path: &Path) -> Result<u64, String> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| format!("'{}': {e}", path.display()))
}

/// Outcome of a static build: the binary and how long it took.
pub struct StaticBuild {
    pub path: PathBuf,
    pub took: Duration,
}

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `cargo build --release --target x86_64-unknown-linux-gnu --target-dir
/// target/static` with `+crt-static`, output suppressed (kept in a temp
/// file for the error message), killed after `limit`.
pub fn static_build(limit: Duration) -> Result<StaticBuild, String> {
    if !cfg!(all(target_arch = "x86_64", target_os = "linux")) {
        return Err("skipped: host is not x86_64 Linux".into());
    }
    let target_dir = manifest().join("target").join("static");
    let cargo = std::env::var("CARGO")
        .ok()
        .or_else(|| option_env!("CARGO").map(str::to_string))
        .unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.args(["build", "--release", "--target", "x86_64-unknown-linux-gnu"])
        .arg("--target-dir")
        .arg(&target_dir)
        .env("RUSTFLAGS", "-C target-feature=+crt-static");
    let took = run_bounded(cmd, &cargo, limit)?;
    Ok(StaticBuild {
        path: target_dir
            .join("x86_64-unknown-linux-gnu")
            .join("release")
            .join("clawgate"),
        took,
    })
}

/// `contrib/build-static.sh x86_64-unknown-linux-musl` (Debian's rustc with
/// `-Zbuild-std`, zig as the musl linker), output suppressed, killed after
/// `limit`. The script names any missing prerequisite; that line becomes
/// the reason the rows are skipped.
pub fn musl_build(limit: Duration) -> Result<StaticBuild, String> {
    const TRIPLE: &str = "x86_64-unknown-linux-musl";
    if !cfg!(all(target_arch = "x86_64", target_os = "linux")) {
        return Err("skipped: host is not x86_64 Linux".into());
    }
    let script = manifest().join("contrib").join("build-static.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(&script).arg(TRIPLE);
    let took = run_bounded(cmd, "bash contrib/build-static.sh", limit)?;
    Ok(StaticBuild {
        path: manifest()
            .join("target")
            .join("static")
            .join(TRIPLE)
            .join("clawgate"),
        took,
    })
}

/// Runs a build in the manifest dir, in its own process group (so a
/// timeout also kills rustc and the linker), stdout discarded and stderr
/// kept in a temp file for the error message; killed after `limit`.
fn run_bounded(mut cmd: Command, what: &str, limit: Duration) -> Result<Duration, String> {
    let log = procs::TempDir::new("static")?;
    let log_path = log.0.join("build.log");
    let log_file = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    let mut child = cmd
        .current_dir(manifest())
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("skipped: cannot run '{what}': {e}"))?;
    let pgid = -(child.id() as i32);
    procs::register(pgid);
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Ok(st),
            Ok(None) if t0.elapsed() > limit => {
                // SAFETY: kill(2) on the process group we just created.
                unsafe { libc::kill(pgid, libc::SIGKILL) };
                let _ = child.wait();
                break Err(format!("skipped: build took > {} s", limit.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => break Err(format!("skipped: waiting for {what}: {e}")),
        }
    };
    procs::unregister(pgid);
    let status = status?;
    if !status.success() {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let last = text
            .lines()
            .rev()
            .find(|l| l.contains("error"))
            .or_else(|| text.lines().rev().find(|l| !l.trim().is_empty()))
            .unwrap_or("no error line")
            .to_string();
        return Err(format!("skipped: build failed ({status}): {last}"));
    }
    Ok(t0.elapsed())
}

/// Whether a binary starts and answers `--version` (within 5 s).
pub fn runs(path: &Path) -> bool {
    let Ok(mut child) = Command::new(path)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        return false;
    };
    let t0 = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return st.success(),
            Ok(None) if t0.elapsed() < Duration::from_secs(5) => {
                std::thread::sleep(Duration::from_millis(5))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}
