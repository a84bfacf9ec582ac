//! Starting and stopping the control plane's processes so that none outlives its owner.
//!
//! An attached process (tests, `cargo xtask test`) gets `PR_SET_PDEATHSIG(SIGKILL)`: when the
//! process that started it dies, even by SIGKILL, the kernel kills it too. The signal is tied
//! to the *thread* that forked, so every attached process is forked by one spawner thread that
//! lives as long as the process (a thread of a pool that exits when idle would take its
//! children with it). A detached process (`cargo xtask cluster up`) starts its own session, so
//! neither the end of `cargo xtask` nor a Ctrl-C in its terminal stops it; `cluster down` does.
#![allow(unsafe_code)]

use std::io;
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

type Job = (Command, mpsc::Sender<io::Result<Child>>);

/// Starts `cmd`: attached (dies with this process) or detached (its own session).
pub(crate) fn spawn(mut cmd: Command, detached: bool) -> io::Result<Child> {
    if detached {
        // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() == -1 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        return cmd.spawn();
    }
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("controlplane-spawner".into())
            .spawn(move || {
                for (cmd, reply) in rx {
                    let _ = reply.send(spawn_attached(cmd));
                }
            })
            .expect("the spawner thread starts");
        Mutex::new(tx)
    });
    let (tx, rx) = mpsc::channel();
    spawner
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .send((cmd, tx))
        .map_err(|_| io::Error::other("the spawner thread is gone"))?;
    rx.recv()
        .map_err(|_| io::Error::other("the spawner thread is gone"))?
}

fn spawn_attached(mut cmd: Command) -> io::Result<Child> {
    // SAFETY: getpid before the fork; in the child only async-signal-safe calls (prctl,
    // getppid, kill) and no allocation.
    let parent = unsafe { libc::getpid() };
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl: then nobody would kill us.
            if libc::getppid() != parent {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
            Ok(())
        });
    }
    cmd.spawn()
}

/// Sends `signal` to `pid`; false when no such process exists.
pub(crate) fn signal(pid: u32, signal: i32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill has no memory effects.
    unsafe { libc::kill(pid, signal) == 0 }
}

/// True while a process with `pid` exists and is not a zombie.
pub(crate) fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the field after the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Stops `child`: SIGTERM, then SIGKILL after `grace`; reaps it.
pub(crate) fn stop(child: &mut Child, grace: Duration) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    signal(child.id(), libc::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Stops a process this one did not start (a detached control plane): SIGTERM, then SIGKILL
/// after `grace`.
pub(crate) fn stop_pid(pid: u32, grace: Duration) {
    if !alive(pid) {
        return;
    }
    signal(pid, libc::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !alive(pid) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    signal(pid, libc::SIGKILL);
}
