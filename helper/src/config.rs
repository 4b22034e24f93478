//! Compile-time configuration. Nothing here is read at run time: a build may
//! override a value by setting the environment variable named beside it while
//! compiling (`option_env!`), and `--version` prints what was compiled in.

macro_rules! setting {
    ($name:ident, $build_var:literal, $default:literal) => {
        pub const $name: &str = match option_env!($build_var) {
            Some(value) => value,
            None => $default,
        };
        const _: () = assert!(
            is_plain_path($name),
            concat!($build_var, " must be a plain word or path")
        );
    };
}

setting!(SCAN_DIR, "HERMES_S6_BUILD_SCANDIR", "/run/service");
setting!(COMMAND_DIR, "HERMES_S6_BUILD_COMMAND_DIR", "/command");
setting!(HERMES_GROUP, "HERMES_S6_BUILD_GROUP", "hermes");
setting!(HERMES_USER, "HERMES_S6_BUILD_USER", "hermes");
setting!(HERMES_HOME, "HERMES_S6_BUILD_HOME", "/opt/data");
setting!(GATEWAY_COMMAND, "HERMES_S6_BUILD_GATEWAY_COMMAND", "hermes");

/// Where the group database lives; read directly (no NSS modules are loaded
/// into the privileged process).
pub const GROUP_FILE: &str = "/etc/group";
pub const SYSLOG_SOCKET: &str = "/dev/log";

/// The values above are pasted into the slot's scripts, so they are limited
/// to characters that need no quoting in execline or sh.
const fn is_plain_path(value: &str) -> bool {
    let bytes = value.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'/' | b'_' | b'.' | b'-' => i += 1,
            _ => return false,
        }
    }
    !bytes.is_empty()
}
