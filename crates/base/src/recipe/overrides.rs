//! `--set key.path=value`: overrides applied to the TOML table before it is deserialized.
use crate::error::{Error, Result};

/// Applies one `a.b.c=value` override. The value is read as a TOML value (`0.1`, `true`,
/// `"sgd"`, `[1, 2]`); anything that does not parse as one is taken as a bare string, so
/// `optim.name=adam` works without quotes.
pub fn apply_override(table: &mut toml::Table, spec: &str) -> Result<()> {
    let (key, raw) = spec
        .split_once('=')
        .ok_or_else(|| Error::recipe(spec, "an override must look like key.path=value"))?;
    let raw = raw.trim();
    // An integer past TOML's range would otherwise become a string, and the error then speak
    // of a string where the user wrote a number.
    if raw
        .strip_prefix(['-', '+'])
        .unwrap_or(raw)
        .bytes()
        .all(|b| b.is_ascii_digit())
        && !raw.is_empty()
        && raw.parse::<i64>().is_err()
    {
        return Err(Error::recipe(
            key.trim(),
            format!("got {raw}; integers in a recipe are TOML's, from -9223372036854775808 to 9223372036854775807"),
        ));
    }
    set_path(table, key.trim(), parse_value(raw))
}

/// Sets the field at dotted `key` (e.g. `optim.lr`) to `value`, creating sections as needed.
pub fn set_path(table: &mut toml::Table, key: &str, value: toml::Value) -> Result<()> {
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(Error::recipe(key, "empty component in key path"));
    }
    let (last, parents) = parts.split_last().expect("split yields at least one part");
    let mut node = table;
    for (i, part) in parents.iter().enumerate() {
        let entry = node
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        node = entry
            .as_table_mut()
            .ok_or_else(|| Error::recipe(parts[..=i].join("."), "is a value, not a section"))?;
    }
    node.insert(last.to_string(), value);
    Ok(())
}

fn parse_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}
