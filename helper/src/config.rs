//! Compile-time configuration. Nothing here is read at run time: a build may
//! override a value by setting the environment variable named beside it while
//! compiling (`option_env!`), and `--version` prints what was compiled in.

macro_rules! setting {
    ($name:ident, $build_var:literal, $default:literal) => {
        pub const $name: &str = match option_env!($build_var) {
            Some(value) => value,
            None => $default,
        };
    };
}

setting!(SCAN_DIR, "HERMES_S6_BUILD_SCANDIR", "/run/service");
setting!(COMMAND_DIR, "HERMES_S6_BUILD_COMMAND_DIR", "/command");
setting!(HERMES_GROUP, "HERMES_S6_BUILD_GROUP", "hermes");
setting!(HERMES_USER, "HERMES_S6_BUILD_USER", "hermes");
setting!(HERMES_HOME, "HERMES_S6_BUILD_HOME", "/opt/data");
setting!(GATEWAY_COMMAND, "HERMES_S6_BUILD_GATEWAY_COMMAND", "hermes");
setting!(SERVICE_LIMIT_TEXT, "HERMES_S6_BUILD_SERVICE_LIMIT", "1000");

/// How many services s6-svscan supervises at most when PID 1's command line
/// says nothing (`-C`, `-c`): s6's default, with which s6-overlay runs it.
pub const SERVICE_LIMIT: usize = match usize::from_str_radix(SERVICE_LIMIT_TEXT, 10) {
    Ok(limit) => limit,
    Err(_) => panic!("HERMES_S6_BUILD_SERVICE_LIMIT must be a number"),
};
/// Where s6-svscan's own limit is read from: PID 1's arguments.
pub const INIT_CMDLINE: &str = "/proc/1/cmdline";

/// Read directly, so no NSS module is ever loaded into the privileged process.
pub const GROUP_FILE: &str = "/etc/group";
pub const SYSLOG_SOCKET: &str = "/dev/log";

/// Every value above is pasted into the slot's scripts unquoted, so a build
/// may only use characters that need no quoting in execline or sh
/// (`helper/tests/grammar.rs` checks the compiled-in values).
pub const PASTED: [&str; 5] = [SCAN_DIR, COMMAND_DIR, HERMES_USER, HERMES_HOME, GATEWAY_COMMAND];
