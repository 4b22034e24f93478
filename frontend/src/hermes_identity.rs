//! Acting on the volume with hermes's rights when the frontend runs as root.
//!
//! In no-setuid mode the boot runs `hermes-s6 reconcile` as root, because
//! only root can run the helper there. The reconciler also reads and writes
//! the volume (`$HERMES_HOME`: state files, stale pid files, the boot log),
//! which the hermes user controls entirely: root following a symbolic link
//! planted there would read or write any file of the system. So a root
//! reconciler takes hermes's identity for everything it does ([`AsHermes`]:
//! effective uid and gid hermes, supplementary groups just hermes) and goes
//! back to root only to run the helper ([`AsHermes::as_root`]). With its real
//! and saved uid still 0, hermes processes can neither signal nor trace it
//! meanwhile (and the kernel marks it non-dumpable).

use nix::unistd::{Gid, Uid, User, getegid, geteuid, getgroups, setegid, seteuid, setgroups};

use crate::error::Error;

/// While alive, this process acts as hermes (effective ids and groups);
/// dropping it goes back to root.
#[derive(Debug)]
pub struct AsHermes {
    uid: Uid,
    gid: Gid,
    root_gid: Gid,
    root_groups: Vec<Gid>,
}

impl AsHermes {
    /// Takes `user`'s identity when this process is effectively root;
    /// `None` otherwise, or when `user` is root itself (nothing to drop).
    pub fn adopt(user: &str) -> Result<Option<Self>, Error> {
        if !geteuid().is_root() {
            return Ok(None);
        }
        let failed = |what: &str, e: nix::errno::Errno| Error::Io {
            action: "switch identity:",
            path: what.into(),
            source: std::io::Error::from(e),
        };
        let account = User::from_name(user)
            .map_err(|e| failed("getpwnam", e))?
            .ok_or_else(|| Error::Io {
                action: "switch identity:",
                path: user.into(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such user"),
            })?;
        if account.uid == geteuid() {
            return Ok(None);
        }
        let identity = Self {
            uid: account.uid,
            gid: account.gid,
            root_gid: getegid(),
            root_groups: getgroups().map_err(|e| failed("getgroups", e))?,
        };
        identity
            .become_hermes()
            .map_err(|e| failed("set effective ids", e))?;
        Ok(Some(identity))
    }

    fn become_hermes(&self) -> nix::Result<()> {
        setgroups(&[self.gid])?;
        setegid(self.gid)?;
        seteuid(self.uid)
    }

    fn become_root(&self) -> nix::Result<()> {
        seteuid(Uid::from_raw(0))?;
        setegid(self.root_gid)?;
        setgroups(&self.root_groups)
    }

    /// Runs `work` as root (the helper), then takes hermes's identity back.
    ///
    /// # Panics
    /// When the identity cannot be switched (never with a real uid of 0).
    pub fn as_root<T>(&self, work: impl FnOnce() -> T) -> T {
        self.become_root()
            .expect("a process with real uid 0 can become root again");
        let result = work();
        self.become_hermes()
            .expect("root can take the hermes identity again");
        result
    }
}

impl Drop for AsHermes {
    fn drop(&mut self) {
        let _ = self.become_root();
    }
}

/// Runs `work` as root under `identity`, or as is without one.
pub fn privileged<T>(identity: Option<&AsHermes>, work: impl FnOnce() -> T) -> T {
    match identity {
        Some(identity) => identity.as_root(work),
        None => work(),
    }
}
