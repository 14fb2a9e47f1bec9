//! The API's answer to a body that is not a valid request: `400 invalid_request_error` with the
//! parameter at fault in `param` (`model`, `input[2].content`), as the Responses API words it.
//!
//! A body is first read the fast way; only one that fails is read again with its path tracked,
//! so a valid request pays nothing for this.

use serde::de::DeserializeOwned;
use serde_json::error::Category;

use crate::faults::ErrorReply;

/// The 400 answering `body`, which did not read as a `T`.
pub(crate) fn invalid_body<T: DeserializeOwned>(body: &[u8]) -> ErrorReply {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let Err(err) = serde_path_to_error::deserialize::<_, T>(&mut deserializer) else {
        // It reads; what follows it does not.
        return match deserializer.end() {
            Ok(()) => not_json("the body is not one JSON value"),
            Err(err) => not_json(&plain_message(&err)),
        };
    };
    let path = err.path().to_string();
    let inner = err.into_inner();
    match inner.classify() {
        Category::Syntax | Category::Eof | Category::Io => not_json(&plain_message(&inner)),
        Category::Data => data_error(&path, &plain_message(&inner)),
    }
}

/// A body that is not JSON at all; no parameter is at fault.
fn not_json(detail: &str) -> ErrorReply {
    ErrorReply::invalid_request(
        "invalid_json",
        &format!(
            "We could not parse the JSON body of your request ({detail}). The API expects a \
             JSON payload."
        ),
    )
}

/// A JSON body whose value at `path` does not fit: a missing parameter, a wrong type or a bad
/// value.
fn data_error(path: &str, detail: &str) -> ErrorReply {
    if let Some(field) =
        detail.strip_prefix("missing field `").and_then(|rest| rest.strip_suffix('`'))
    {
        let param = join(path, field);
        return ErrorReply::invalid_request(
            "missing_required_parameter",
            &format!("Missing required parameter: '{param}'."),
        )
        .with_param(&param);
    }
    let param = if path == "." { String::new() } else { path.to_owned() };
    if let Some(rest) = detail.strip_prefix("invalid type: ") {
        let (got, expected) = rest.split_once(", expected ").unwrap_or((rest, "another type"));
        return ErrorReply::invalid_request(
            "invalid_type",
            &format!("Invalid type for '{param}': expected {expected}, but got {got} instead."),
        )
        .with_param(&param);
    }
    ErrorReply::invalid_request("invalid_value", &format!("Invalid value for '{param}': {detail}."))
        .with_param(&param)
}

/// `path.field`, or `field` at the top level.
fn join(path: &str, field: &str) -> String {
    if path == "." { field.to_owned() } else { format!("{path}.{field}") }
}

/// A `serde_json` error's message without its ` at line L column C` suffix.
fn plain_message(err: &serde_json::Error) -> String {
    let text = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    text.strip_suffix(&suffix).map_or_else(|| text.clone(), str::to_owned)
}

#[cfg(test)]
mod tests;
