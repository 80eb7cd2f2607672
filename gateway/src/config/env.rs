//! `GATEWAY_<SECTION>__<KEY>=value` overrides, merged into the parsed TOML table.
//!
//! A value is read as a TOML value when it parses as one (numbers, booleans, arrays),
//! otherwise as a plain string, so `GATEWAY_SFTP__LISTEN=0.0.0.0:22` needs no quoting.

use super::ConfigError;

const PREFIX: &str = "GATEWAY_";

pub(super) fn apply(
    table: &mut toml::Table,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    for (var, raw) in vars {
        let Some(rest) = var.strip_prefix(PREFIX) else {
            continue;
        };
        let Some((section, key)) = rest.split_once("__") else {
            // GATEWAY_BIN and friends are not config keys.
            continue;
        };
        if section.is_empty() || key.is_empty() || key.contains("__") {
            return Err(ConfigError::Env {
                var,
                message: "expected GATEWAY_<SECTION>__<KEY>".into(),
            });
        }
        let section = section.to_ascii_lowercase();
        let key = key.to_ascii_lowercase();
        let entry = table
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let Some(section_table) = entry.as_table_mut() else {
            return Err(ConfigError::Env {
                var,
                message: format!("`{section}` is not a section"),
            });
        };
        section_table.insert(key, parse_value(&raw));
    }
    Ok(())
}

fn parse_value(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    match doc.parse::<toml::Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.into())),
        Err(_) => toml::Value::String(raw.into()),
    }
}
