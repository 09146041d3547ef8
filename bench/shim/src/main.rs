//! Provider shim for the benchmark: Terraform starts this file (placed in the filesystem mirror
//! under the provider's own name); it runs the real provider as its child with stdin, stdout and
//! stderr inherited (so the go-plugin handshake line goes straight from the child to Terraform),
//! forwards SIGTERM and SIGINT to it, and when the child exits appends one JSON line with the
//! child's rusage (user and system CPU, peak RSS) to a log, then exits with the child's code.
//!
//! The real provider's path is read from the file `bench-shim.target` next to this executable;
//! the log is `$BENCH_RUSAGE_LOG`, else `$TMPDIR/bench-shim-rusage.log` (never the package
//! directory: Terraform checks its contents against the lock file's hashes). Written in Rust rather than
//! Python so that the shim's own memory (which Linux carries into the child's ru_maxrss through
//! fork/exec) stays around 1 MB and its start-up costs next to nothing.

use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = CHILD.load(Ordering::SeqCst);
    if pid > 0 {
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn die(msg: &str) -> ! {
    eprintln!("bench-provider-shim: {msg}");
    std::process::exit(111)
}

fn main() {
    let exe = std::env::current_exe().unwrap_or_else(|e| die(&format!("current_exe: {e}")));
    // Not named terraform-provider-*: Terraform takes the first such file in the package
    // directory as the provider executable.
    let sidecar = exe
        .parent()
        .unwrap_or_else(|| die("executable has no directory"))
        .join("bench-shim.target");
    let target = std::fs::read_to_string(&sidecar)
        .unwrap_or_else(|e| die(&format!("cannot read {}: {e}", sidecar.to_string_lossy())));
    let target = target.trim().to_string();
    let log = std::env::var_os("BENCH_RUSAGE_LOG")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("bench-shim-rusage.log"));
    let label = std::env::var("BENCH_LABEL").unwrap_or_default();

    // argv for the child: the real path, then our arguments.
    let c_target = CString::new(target.clone()).unwrap_or_else(|_| die("bad target path"));
    let mut c_args: Vec<CString> = vec![c_target.clone()];
    for a in std::env::args_os().skip(1) {
        c_args.push(CString::new(a.as_bytes()).unwrap_or_else(|_| die("bad argument")));
    }
    let mut argv: Vec<*const libc::c_char> = c_args.iter().map(|c| c.as_ptr()).collect();
    argv.push(std::ptr::null());

    // Install the forwarding handlers before the child exists; the child resets them on exec.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = forward as *const () as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGTERM, &sa, std::ptr::null_mut());
        libc::sigaction(libc::SIGINT, &sa, std::ptr::null_mut());
    }

    let started = now();
    // vfork+exec (posix_spawn) keeps the child's start cheap; environ is inherited.
    let mut pid: libc::pid_t = 0;
    extern "C" {
        static environ: *const *mut libc::c_char;
    }
    let rc = unsafe {
        libc::posix_spawn(
            &mut pid,
            c_target.as_ptr(),
            std::ptr::null(),
            std::ptr::null(),
            argv.as_ptr() as *const *mut libc::c_char,
            environ,
        )
    };
    if rc != 0 {
        die(&format!("cannot start {target}: errno {rc}"));
    }
    CHILD.store(pid, Ordering::SeqCst);

    let mut status: libc::c_int = 0;
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        if r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        die("wait4 failed");
    }
    let ended = now();
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let (code, signal) = if libc::WIFEXITED(status) {
        (libc::WEXITSTATUS(status), 0)
    } else if libc::WIFSIGNALED(status) {
        (128 + libc::WTERMSIG(status), libc::WTERMSIG(status))
    } else {
        (1, 0)
    };
    let line = format!(
        "{{\"label\":{:?},\"target\":{:?},\"pid\":{},\"start\":{:.6},\"end\":{:.6},\"utime\":{:.6},\"stime\":{:.6},\"maxrss_kb\":{},\"exit\":{},\"signal\":{}}}\n",
        label,
        target,
        pid,
        started,
        ended,
        tv(ru.ru_utime),
        tv(ru.ru_stime),
        ru.ru_maxrss,
        code,
        signal
    );
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(&log) {
        let _ = f.write_all(line.as_bytes());
    }
    if signal != 0 {
        // Die the same way the child did, so Terraform sees what it would have seen.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
            libc::kill(libc::getpid(), signal);
        }
    }
    std::process::exit(code);
}
