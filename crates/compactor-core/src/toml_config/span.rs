//! Where in the file a problem is: line numbers, the dotted key at a byte span, and the
//! [`ConfigFileError`]s that point there.

use std::fmt::Write as _;
use std::ops::Range;
use std::path::Path;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::ConfigFileError;

/// The file being read: its text (for line numbers and key paths) and its path.
pub(super) struct FileContext<'a> {
    pub(super) text: &'a str,
    pub(super) path: &'a Path,
}

impl FileContext<'_> {
    /// 1-based line of byte `offset`.
    pub(super) fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        1 + self.text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count()
    }

    pub(super) fn invalid(
        &self,
        key: &str,
        span: Range<usize>,
        message: impl Into<String>,
    ) -> ConfigFileError {
        ConfigFileError::InvalidValue {
            path: self.path.to_path_buf(),
            line: self.line(span.start),
            key: key.to_owned(),
            message: message.into(),
        }
    }

    /// Turns a deserialization error into one that names the key at its span.
    pub(super) fn serde_error(&self, err: &toml::de::Error) -> ConfigFileError {
        let path = self.path.to_path_buf();
        let message = err.message().trim().to_owned();
        let Some(span) = err.span() else {
            return ConfigFileError::Syntax { path, line: 1, message };
        };
        let line = self.line(span.start);
        // Deserialization errors come from a document that parsed; a syntax error does not.
        let Ok(document) = DeTable::parse(self.text) else {
            return ConfigFileError::Syntax { path, line, message };
        };
        let key = key_at(document.get_ref(), &span, "").unwrap_or_default();
        if let Some(rest) = message.strip_prefix("unknown field `") {
            // serde lists the fields as "expected `a`", "`a` or `b`", "one of `a`, `b`, `c`".
            let expected = rest
                .split_once("expected ")
                .map(|(_, list)| list.split('`').skip(1).step_by(2).map(str::to_owned).collect())
                .unwrap_or_default();
            return ConfigFileError::UnknownKey { path, line, key, expected };
        }
        if key.is_empty() {
            return ConfigFileError::Syntax { path, line, message };
        }
        ConfigFileError::InvalidValue { path, line, key, message }
    }

    /// The span of `table.key` in the document, for checks that involve two keys.
    pub(super) fn find_key_span(&self, table: &str, key: &str) -> Range<usize> {
        let Ok(document) = DeTable::parse(self.text) else {
            return 0..0;
        };
        document
            .get_ref()
            .get(table)
            .and_then(|value| value.get_ref().as_table())
            .and_then(|table| table.get_key_value(key))
            .map_or(0..0, |(key, _)| key.span())
    }
}

/// The dotted path of the key whose key or value covers `span`.
fn key_at(table: &DeTable<'_>, span: &Range<usize>, prefix: &str) -> Option<String> {
    for (key, value) in table {
        let path = dotted(prefix, key.get_ref());
        if covers(&key.span(), span) {
            return Some(path);
        }
        // Dotted keys and headers make tables whose own span may not cover their entries.
        if let Some(found) = value_key_at(value, span, &path) {
            return Some(found);
        }
    }
    None
}

fn value_key_at(value: &Spanned<DeValue<'_>>, span: &Range<usize>, path: &str) -> Option<String> {
    match value.get_ref() {
        DeValue::Table(table) => key_at(table, span, path)
            .or_else(|| covers(&value.span(), span).then(|| path.to_owned())),
        DeValue::Array(array) => {
            for (index, item) in array.iter().enumerate() {
                let mut item_path = String::from(path);
                let _ = write!(item_path, "[{index}]");
                if let Some(found) = value_key_at(item, span, &item_path) {
                    return Some(found);
                }
            }
            covers(&value.span(), span).then(|| path.to_owned())
        }
        DeValue::String(_)
        | DeValue::Integer(_)
        | DeValue::Float(_)
        | DeValue::Boolean(_)
        | DeValue::Datetime(_) => covers(&value.span(), span).then(|| path.to_owned()),
    }
}

/// `prefix.name`, quoting `name` when it is not a bare TOML key.
pub(super) fn dotted(prefix: &str, name: &str) -> String {
    let bare =
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let name = if bare { name.to_owned() } else { format!("{name:?}") };
    if prefix.is_empty() { name } else { format!("{prefix}.{name}") }
}

fn covers(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end && outer.start < outer.end
}
