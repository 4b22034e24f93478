//! The Python package `hermes_s6` (`python/`) against the real thing: its
//! integration tests (`python/tests/integration`) run inside the container
//! emulation as the hermes user, with the container's `/usr/bin/python3`,
//! against the installed `hermes-s6`, its setuid helper and s6.
//!
//! pytest comes from a cache under the cargo target directory, installed
//! there on the host with `/usr/bin/python3 -m pip install --target` when
//! missing (the container's `/usr` is the host's, so the interpreter is the
//! same). The package and pytest are copied into the container's `/tmp`,
//! root's and readable by everyone.

mod common;
use common::*;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const PYTHON: &str = "/usr/bin/python3";
const PACKAGE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../python");
/// Where the package and pytest are put in the container.
const IN_CONTAINER: &str = "/tmp/hermes-s6-python";
const PYTEST_IN_CONTAINER: &str = "/tmp/hermes-s6-pytest";
/// Entries of `python/` that are not copied: caches and build output.
const SKIPPED: &[&str] = &[
    "__pycache__",
    ".mypy_cache",
    ".pytest_cache",
    "build",
    "dist",
];

/// pytest for the host's `/usr/bin/python3`, in the target directory.
fn pytest_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-pytest");
    let importable = || {
        Command::new(PYTHON)
            .args(["-c", "import pytest"])
            .env("PYTHONPATH", &dir)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .status()
            .is_ok_and(|s| s.success())
    };
    if !importable() {
        let status = Command::new(PYTHON)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-warn-script-location",
                "--upgrade",
                "--target",
            ])
            .arg(&dir)
            .arg("pytest")
            .status()
            .unwrap_or_else(|e| panic!("cannot run {PYTHON} -m pip: {e}"));
        assert!(
            status.success() && importable(),
            "cannot install pytest into {} with {PYTHON} -m pip ({status})",
            dir.display()
        );
    }
    dir
}

/// Copies `from` to `to` (root's; directories 0755, files 0644), leaving
/// out [`SKIPPED`] entries and `*.egg-info`.
fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap_or_else(|e| panic!("{}: {e}", to.display()));
    fs::set_permissions(to, fs::Permissions::from_mode(0o755)).unwrap();
    for entry in fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let entry = entry.unwrap();
        let name = entry.file_name();
        let name_str = name.to_string_lossy();
        if SKIPPED.contains(&name_str.as_ref()) || name_str.ends_with(".egg-info") {
            continue;
        }
        let target = to.join(&name);
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            copy_tree(&entry.path(), &target);
        } else if kind.is_file() {
            fs::copy(entry.path(), &target).unwrap();
            let mode = if name_str == "check" { 0o755 } else { 0o644 };
            fs::set_permissions(&target, fs::Permissions::from_mode(mode)).unwrap();
        }
    }
}

/// The count before `word` in pytest's summary line ("3 passed, 1 skipped
/// in 2.1s"), 0 when absent.
fn summary_count(output: &str, word: &str) -> u32 {
    let Some(line) = output
        .lines()
        .rev()
        .find(|l| l.contains(" passed") || l.contains(" failed") || l.contains(" error"))
    else {
        return 0;
    };
    let words: Vec<&str> = line
        .split(|c: char| c == ',' || c.is_whitespace() || c == '=')
        .filter(|w| !w.is_empty())
        .collect();
    words
        .windows(2)
        .find(|pair| pair[1].trim_end_matches('s') == word.trim_end_matches('s'))
        .and_then(|pair| pair[0].parse().ok())
        .unwrap_or(0)
}

#[test]
fn python_integration_tests_pass_in_the_container() {
    let Some(c) = boot("python_integration_tests_pass_in_the_container") else {
        return;
    };
    if !c.host_path(PYTHON).is_file() {
        eprintln!(
            "python_integration_tests_pass_in_the_container: SKIPPED: this userland has no {PYTHON} \
             (only the host's Debian 12 userland, HERMES_EMU_S6=2.11, carries one)"
        );
        return;
    }
    let pytest = pytest_dir();
    copy_tree(Path::new(PACKAGE_DIR), &c.host_path(IN_CONTAINER));
    copy_tree(&pytest, &c.host_path(PYTEST_IN_CONTAINER));
    // What the image's boot does before anyone asks: slots for the volume's
    // profiles, `default` among them.
    ok(&c, &["reconcile"]);

    let out = c
        .exec(
            User::Hermes,
            &[
                PYTHON,
                "-m",
                "pytest",
                "-q",
                "-rs",
                "-p",
                "no:cacheprovider",
                "tests/integration",
            ],
        )
        .cwd(IN_CONTAINER)
        .env("HERMES_S6_INTEGRATION", "1")
        .env("HERMES_S6_CLI", "/usr/local/bin/hermes-s6")
        .env("HERMES_HOME", "/opt/data")
        .env(
            "PYTHONPATH",
            format!("{PYTEST_IN_CONTAINER}:{IN_CONTAINER}/src"),
        )
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .timeout(Duration::from_secs(600))
        .output();
    let text = format!("{}{}", out.stdout, out.stderr);
    assert_eq!(out.code, Some(0), "pytest failed:\n{text}");
    let passed = summary_count(&text, "passed");
    assert!(passed > 0, "no test ran:\n{text}");
    assert!(
        !text.contains("integration tests SKIPPED"),
        "the integration tests were not enabled:\n{text}"
    );
    eprintln!(
        "python integration tests: {passed} passed, {} skipped",
        summary_count(&text, "skipped")
    );
    // Nothing the tests made is left behind.
    let left: Vec<String> = fs::read_dir(c.volume().join("profiles"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("pyit-"))
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "left on the volume: {left:?}");
}

#[test]
fn reads_pytest_summaries() {
    assert_eq!(
        summary_count("x\n14 passed, 1 skipped in 3.2s\n", "passed"),
        14
    );
    assert_eq!(summary_count("14 passed, 1 skipped in 3.2s", "skipped"), 1);
    assert_eq!(
        summary_count("=== 2 failed, 3 passed, 1 error in 1s ===", "failed"),
        2
    );
    assert_eq!(summary_count("no tests ran in 0.01s", "passed"), 0);
}
