//! The container's `/dev/log`: a datagram socket owned by the test process.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;
use std::{fs, io};

/// Prefix of the datagrams the sink sends itself; never a syslog record,
/// since a record starts with `<priority>`.
const CONTROL_PREFIX: &[u8] = b"\0hermes-emu ";

#[derive(Debug, Default)]
struct Received {
    records: Vec<String>,
    flushed: u64,
}

/// Receives every datagram sent to its socket, in order, on a background
/// thread that is always blocked in `recv`.
///
/// The receive queue of a Unix datagram socket is short (often 10 datagrams;
/// `net.unix.max_dgram_qlen`), and a sender blocks while it is full, so a
/// reader that only drained on demand would stall a chatty program under test.
#[derive(Debug)]
pub(crate) struct SyslogSink {
    path: PathBuf,
    shared: Arc<(Mutex<Received>, Condvar)>,
    next_flush: Mutex<u64>,
    thread: Option<JoinHandle<()>>,
}

impl SyslogSink {
    /// Binds a socket at `path`, writable by every user (as `/dev/log` is).
    pub(crate) fn bind(path: &Path) -> io::Result<SyslogSink> {
        let socket = UnixDatagram::bind(path)?;
        fs::set_permissions(path, fs::Permissions::from_mode(0o666))?;
        let shared = Arc::new((Mutex::new(Received::default()), Condvar::new()));
        let thread_shared = Arc::clone(&shared);
        let thread = thread::Builder::new()
            .name("hermes-emu-syslog".into())
            .spawn(move || receive_loop(&socket, &thread_shared))?;
        Ok(SyslogSink {
            path: path.to_owned(),
            shared,
            next_flush: Mutex::new(0),
            thread: Some(thread),
        })
    }

    /// Every record received so far, including all datagrams sent before this
    /// call: a marker datagram is queued behind them and awaited, which works
    /// because a datagram socket's queue is first in, first out.
    pub(crate) fn records(&self) -> Vec<String> {
        let mut next = self.next_flush.lock().unwrap_or_else(|p| p.into_inner());
        *next += 1;
        let ticket = *next;
        let mut marker = CONTROL_PREFIX.to_vec();
        marker.extend_from_slice(format!("flush {ticket}").as_bytes());
        self.send_control(&marker);
        let (lock, cond) = &*self.shared;
        let received = lock.lock().unwrap_or_else(|p| p.into_inner());
        let (received, timeout) = cond
            .wait_timeout_while(received, Duration::from_secs(10), |r| r.flushed < ticket)
            .unwrap_or_else(|p| p.into_inner());
        assert!(
            !timeout.timed_out(),
            "hermes-s6-emu: the syslog receiver did not catch up within 10 s"
        );
        received.records.clone()
    }

    fn send_control(&self, datagram: &[u8]) {
        let sender = UnixDatagram::unbound().expect("hermes-s6-emu: cannot create a socket");
        sender
            .send_to(datagram, &self.path)
            .expect("hermes-s6-emu: cannot reach the syslog receiver");
    }
}

impl Drop for SyslogSink {
    fn drop(&mut self) {
        let mut stop = CONTROL_PREFIX.to_vec();
        stop.extend_from_slice(b"stop");
        if UnixDatagram::unbound()
            .and_then(|s| s.send_to(&stop, &self.path))
            .is_ok()
            && let Some(thread) = self.thread.take()
        {
            let _ = thread.join();
        }
    }
}

fn receive_loop(socket: &UnixDatagram, shared: &(Mutex<Received>, Condvar)) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match socket.recv(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        let datagram = &buf[..n];
        let (lock, cond) = shared;
        if let Some(control) = datagram.strip_prefix(CONTROL_PREFIX) {
            if control == b"stop" {
                return;
            }
            if let Some(ticket) = std::str::from_utf8(control)
                .ok()
                .and_then(|c| c.strip_prefix("flush "))
                .and_then(|t| t.parse().ok())
            {
                lock.lock().unwrap_or_else(|p| p.into_inner()).flushed = ticket;
                cond.notify_all();
            }
            continue;
        }
        lock.lock()
            .unwrap_or_else(|p| p.into_inner())
            .records
            .push(String::from_utf8_lossy(datagram).into_owned());
    }
}
