//! `hermes-s6-audit-tracer`: the checks of `audit/run` that are easier to
//! get right in Rust than in shell.
//!
//! ```text
//! hermes-s6-audit-tracer loc --budget N --unsafe-budget N DIR
//! hermes-s6-audit-tracer checklist CHECKLIST.md REPO_ROOT [--update]
//! hermes-s6-audit-tracer syscalls --allow FILE --out DIR --helper BIN --support DIR [--ops a,b]
//! hermes-s6-audit-tracer syscalls --allow FILE --traces DIR
//! ```
//!
//! Each prints a report and exits 1 when a budget or an allowlist is
//! broken, 2 on a usage or environment error.

use hermes_s6_audit_tracer::{OPS, allow, check, checklist, loc, strace, trace};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "usage:
  hermes-s6-audit-tracer loc --budget N --unsafe-budget N DIR
  hermes-s6-audit-tracer checklist CHECKLIST.md REPO_ROOT [--update]
  hermes-s6-audit-tracer syscalls --allow FILE --out DIR --helper BIN --support DIR [--ops a,b]
  hermes-s6-audit-tracer syscalls --allow FILE --traces DIR";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("loc") => cmd_loc(&args[1..]),
        Some("checklist") => cmd_checklist(&args[1..]),
        Some("syscalls") => cmd_syscalls(&args[1..]),
        _ => Err(USAGE.to_owned()),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("hermes-s6-audit-tracer: {e}");
            ExitCode::from(2)
        }
    }
}

/// `--name value` options and positional arguments.
struct Args {
    opts: BTreeMap<String, String>,
    flags: Vec<String>,
    positional: Vec<String>,
}

fn parse_args(args: &[String], with_value: &[&str]) -> Result<Args, String> {
    let mut parsed = Args {
        opts: BTreeMap::new(),
        flags: Vec::new(),
        positional: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if let Some(name) = a.strip_prefix("--") {
            if with_value.contains(&name) {
                let v = it
                    .next()
                    .ok_or(format!("--{name} needs a value\n{USAGE}"))?;
                parsed.opts.insert(name.to_owned(), v.clone());
            } else {
                parsed.flags.push(name.to_owned());
            }
        } else {
            parsed.positional.push(a.clone());
        }
    }
    Ok(parsed)
}

fn number(args: &Args, name: &str) -> Result<usize, String> {
    args.opts
        .get(name)
        .ok_or(format!("--{name} is required\n{USAGE}"))?
        .parse()
        .map_err(|_| format!("--{name} takes a number"))
}

fn cmd_loc(args: &[String]) -> Result<bool, String> {
    let a = parse_args(args, &["budget", "unsafe-budget"])?;
    let budget = number(&a, "budget")?;
    let unsafe_budget = number(&a, "unsafe-budget")?;
    let [dir] = a.positional.as_slice() else {
        return Err(USAGE.to_owned());
    };
    let counts = loc::count_dir(Path::new(dir))?;
    println!(
        "  {:<28} {:>6} {:>8} {:>6} {:>6} {:>7}",
        "file", "code", "comment", "blank", "test", "unsafe"
    );
    let mut total = loc::FileCount::default();
    for c in &counts {
        let name = c.path.strip_prefix(dir).unwrap_or(&c.path).display();
        println!(
            "  {:<28} {:>6} {:>8} {:>6} {:>6} {:>7}",
            name.to_string(),
            c.code,
            c.comment,
            c.blank,
            c.test,
            c.unsafe_count
        );
        total.code += c.code;
        total.comment += c.comment;
        total.blank += c.blank;
        total.test += c.test;
        total.unsafe_count += c.unsafe_count;
    }
    println!(
        "  {:<28} {:>6} {:>8} {:>6} {:>6} {:>7}",
        "total", total.code, total.comment, total.blank, total.test, total.unsafe_count
    );
    let mut ok = true;
    if total.code > budget {
        ok = false;
        println!(
            "FAIL helper size: {} lines of code, over the budget of {budget}",
            total.code
        );
    } else {
        println!(
            "ok   helper size: {} lines of code (budget {budget})",
            total.code
        );
    }
    if total.unsafe_count > unsafe_budget {
        ok = false;
        for c in counts.iter().filter(|c| c.unsafe_count > 0) {
            for line in &c.unsafe_lines {
                println!("     unsafe at {}:{line}", c.path.display());
            }
        }
        println!(
            "FAIL unsafe: {} 'unsafe' in the helper's code, over the budget of {unsafe_budget}",
            total.unsafe_count
        );
    } else {
        println!(
            "ok   unsafe: {} 'unsafe' in the helper's code (budget {unsafe_budget})",
            total.unsafe_count
        );
    }
    Ok(ok)
}

fn cmd_checklist(args: &[String]) -> Result<bool, String> {
    let a = parse_args(args, &[])?;
    let [list, root] = a.positional.as_slice() else {
        return Err(USAGE.to_owned());
    };
    let update = a.flags.iter().any(|f| f == "update");
    let (report, ok) = checklist::run(Path::new(list), Path::new(root), update)?;
    for line in report {
        println!("  {line}");
    }
    Ok(ok)
}

fn cmd_syscalls(args: &[String]) -> Result<bool, String> {
    let a = parse_args(
        args,
        &["allow", "out", "helper", "support", "ops", "traces"],
    )?;
    let allow_path = a
        .opts
        .get("allow")
        .ok_or(format!("--allow is required\n{USAGE}"))?;
    let allow_text = std::fs::read_to_string(allow_path)
        .map_err(|e| format!("cannot read {allow_path}: {e}"))?;
    let allow = allow::parse(&allow_text)?;
    let dir: PathBuf;
    if let Some(traces) = a.opts.get("traces") {
        dir = PathBuf::from(traces);
    } else {
        let get = |k: &str| a.opts.get(k).ok_or(format!("--{k} is required\n{USAGE}"));
        dir = PathBuf::from(get("out")?);
        let only: Vec<String> = a
            .opts
            .get("ops")
            .map(|o| o.split(',').map(str::to_owned).collect())
            .unwrap_or_default();
        let _ = std::fs::remove_dir_all(&dir);
        let traced = trace::run(
            Path::new(get("helper")?),
            Path::new(get("support")?),
            &dir,
            &only,
        )?;
        for t in &traced {
            let code = t.output.code.map_or("signal".to_owned(), |c| c.to_string());
            let exit = format!("{code} {}\n", t.expected_exit);
            std::fs::write(dir.join(format!("{}.exit", t.op)), exit)
                .and_then(|()| {
                    std::fs::write(dir.join(format!("{}.stderr", t.op)), &t.output.stderr)
                })
                .map_err(|e| format!("{}: {e}", dir.display()))?;
        }
    }
    let mut reports = Vec::new();
    for (op, _) in OPS {
        let file = dir.join(format!("{op}.trace"));
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let exit_text = std::fs::read_to_string(dir.join(format!("{op}.exit"))).unwrap_or_default();
        let mut fields = exit_text.split_whitespace();
        let exit = fields.next().and_then(|c| c.parse().ok());
        let expected = fields.next().and_then(|c| c.parse().ok()).unwrap_or(0);
        let parsed = strace::parse(&text);
        reports.push(check::check(
            op,
            &parsed,
            &allow,
            hermes_s6_emu::HELPER_PATH,
            expected,
            exit,
        ));
    }
    if reports.is_empty() {
        return Err(format!("no traces in {}", dir.display()));
    }
    Ok(print_syscall_report(&allow, &reports, &dir))
}

fn print_syscall_report(allow: &allow::Allow, reports: &[check::OpReport], dir: &Path) -> bool {
    let mut ok = true;
    println!("  traces in {}", dir.display());
    println!(
        "  {:<22} {:>4} {:>6} {:>9} {:>8}  start-up ends at",
        "operation", "exit", "calls", "syscalls", "program"
    );
    for r in reports {
        let marker = r
            .marker
            .as_ref()
            .map_or("none".to_owned(), |(m, line)| format!("{m} (line {line})"));
        println!(
            "  {:<22} {:>4} {:>6} {:>9} {:>8}  {marker}",
            r.op,
            r.exit.map_or("?".to_owned(), |c| c.to_string()),
            r.calls,
            r.syscalls.len(),
            r.program_syscalls.len(),
        );
    }
    for r in reports {
        println!("  {}:", r.op);
        let names: Vec<&str> = r.program_syscalls.iter().map(String::as_str).collect();
        println!("    from Rust start-up on: {}", names.join(" "));
        let mut paths: Vec<String> = r
            .program_paths
            .iter()
            .map(|u| format!("{} {}", u.syscall, u.path))
            .collect();
        paths.dedup();
        println!("    by path: {}", paths.join(", "));
        let records: Vec<String> = r
            .output
            .records
            .iter()
            .map(|(line, record)| {
                let result = record.rsplit_once("result=").map_or("?", |(_, v)| v);
                format!("{result} (line {line})")
            })
            .collect();
        let change = r
            .output
            .first_change
            .as_ref()
            .map_or("none".to_owned(), |(line, call)| {
                format!("{call} (line {line})")
            });
        println!(
            "    said: {} write(s) to fds 1-2; audit records: {}; first change to the scan dir: {change}",
            r.output.writes,
            if records.is_empty() {
                "none".to_owned()
            } else {
                records.join(", then ")
            },
        );
        if r.processes != 1 {
            println!("    processes: {}", r.processes);
        }
        for f in &r.failures {
            ok = false;
            println!("FAIL {}: {f}", r.op);
        }
    }
    let mut loader: Vec<String> = reports
        .iter()
        .flat_map(|r| {
            r.loader_paths
                .iter()
                .map(|u| format!("{} {}", u.syscall, u.path))
        })
        .collect();
    loader.sort();
    loader.dedup();
    println!(
        "  start-up by path (loader and libc, before Rust's runtime; all operations): {}",
        loader.join(", ")
    );
    for note in check::unused(allow, reports) {
        println!("  note: {note}");
    }
    let failures: usize = reports.iter().map(|r| r.failures.len()).sum();
    if ok {
        println!(
            "ok   syscalls: {} operations traced, every call and path allowed",
            reports.len()
        );
    } else {
        println!("FAIL syscalls: {failures} violation(s) of audit/syscalls.allow");
    }
    ok
}
