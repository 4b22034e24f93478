//! Spawns container init processes from one thread that lives as long as the
//! test process.
//!
//! A container is started under `setpriv --pdeathsig KILL`, so it dies with
//! its parent. Linux delivers that signal when the *thread* that forked the
//! child exits, not the process: spawned from a test's own thread, a
//! container would be killed as soon as that thread ended, even if the
//! `Container` had been moved elsewhere. Spawning from a thread that is never
//! joined ties the container's life to the whole test process instead, so a
//! `Container` may be moved between threads and shared, and a test process
//! that dies for any reason (even SIGKILL) still takes its containers along.

use std::io;
use std::process::{Child, Command};
use std::sync::mpsc::{self, Sender};
use std::sync::{Mutex, OnceLock};
use std::thread;

type Request = (Command, Sender<io::Result<Child>>);

static SPAWNER: OnceLock<Mutex<Sender<Request>>> = OnceLock::new();

fn spawner() -> &'static Mutex<Sender<Request>> {
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        thread::Builder::new()
            .name("hermes-emu-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    // The requester may have given up; nothing to do then.
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("hermes-s6-emu: cannot start the spawner thread");
        Mutex::new(tx)
    })
}

/// Spawns `command` from the process-lifetime spawner thread.
pub(crate) fn spawn(command: Command) -> io::Result<Child> {
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .send((command, reply_tx))
        .map_err(|_| io::Error::other("hermes-s6-emu: spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("hermes-s6-emu: spawner thread is gone"))?
}
