//! `hermes-s6 info [--json]` and `hermes-s6 profile list [--json]`: what
//! [`crate::info`] gathers, printed.

use std::io::{self, Write};

use crate::cli::Context;
use crate::error::{Error, exit};
use crate::info::{Info, ProfileList, gather};

pub(super) fn run(context: &Context, json: bool, out: &mut dyn Write) -> Result<u8, Error> {
    let info = gather(&context.config, context.service_manager);
    if json {
        let _ = serde_json::to_writer_pretty(&mut *out, &info);
        let _ = writeln!(out);
    } else {
        let _ = write_text(&info, out);
    }
    Ok(exit::OK)
}

/// `key: value` lines; an unknown value reads `unknown`.
fn write_text(info: &Info, out: &mut dyn Write) -> io::Result<()> {
    let known = |value: Option<String>| value.unwrap_or_else(|| "unknown".to_owned());
    writeln!(out, "service_manager: {}", info.service_manager.as_str())?;
    writeln!(
        out,
        "control_mode: {}",
        info.control_mode
            .map_or_else(|| "none".to_owned(), |m| m.as_str().to_owned())
    )?;
    if let Some(reason) = &info.control_reason {
        writeln!(out, "control_reason: {reason}")?;
    }
    writeln!(
        out,
        "runtime_registration: {}",
        if info.runtime_registration {
            "yes"
        } else {
            "no"
        }
    )?;
    writeln!(out, "cli_version: {}", info.versions.cli)?;
    writeln!(
        out,
        "helper_version: {}",
        known(info.versions.helper.clone())
    )?;
    writeln!(out, "s6_version: {}", known(info.versions.s6.clone()))?;
    if let Some(scan) = &info.scan_dir {
        writeln!(out, "scan_dir: {}", scan.path)?;
        writeln!(
            out,
            "services: {}",
            known(scan.services.map(|n| n.to_string()))
        )?;
        writeln!(
            out,
            "service_limit: {}",
            known(scan.limit.map(|n| n.to_string()))
        )?;
    }
    Ok(())
}

/// The profiles with a gateway slot, one per line.
pub(super) fn list(context: &Context, json: bool, out: &mut dyn Write) -> Result<u8, Error> {
    let profiles = context.manager().list_profile_gateways()?;
    let list = ProfileList::new(context.service_manager, profiles);
    if json {
        let _ = serde_json::to_writer_pretty(&mut *out, &list);
        let _ = writeln!(out);
    } else {
        for profile in &list.profiles {
            let _ = writeln!(out, "{profile}");
        }
    }
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::vocabulary::ServiceManagerKind;

    #[test]
    fn text_is_key_value_lines() {
        let mut config = Config::from_lookup(|_| None);
        config.helper = "/nonexistent/helper".into();
        let info = gather(&config, ServiceManagerKind::Unmanaged);
        let mut text = Vec::new();
        write_text(&info, &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert_eq!(
            text,
            format!(
                "service_manager: none\ncontrol_mode: none\nruntime_registration: no\ncli_version: {}\nhelper_version: unknown\ns6_version: unknown\n",
                env!("CARGO_PKG_VERSION")
            )
        );
    }
}
