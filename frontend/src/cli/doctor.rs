//! `hermes-s6 doctor [--json]`: the checks of [`crate::doctor`], printed.
//! Exit 1 when any check failed, 0 otherwise.

use std::io::Write;

use crate::cli::Context;
use crate::doctor::examine;
use crate::error::Error;

pub(super) fn run(context: &Context, json: bool, out: &mut dyn Write) -> Result<u8, Error> {
    let report = examine(&context.config, context.service_manager);
    if json {
        let _ = serde_json::to_writer_pretty(&mut *out, &report);
        let _ = writeln!(out);
    } else {
        let _ = report.write_text(out, context.style.color);
    }
    Ok(u8::from(report.failed()))
}
