//! Number and duration formatting for people.

use std::time::Duration;

/// `1234567` -> `1,234,567`.
pub(crate) fn count(n: impl Into<i128>) -> String {
    let n: i128 = n.into();
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// `830ms` -> `830 ms`, `2.4s` -> `2.4 s`.
pub(crate) fn duration(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms < 1000 { format!("{ms} ms") } else { format!("{:.1} s", duration.as_secs_f64()) }
}

#[cfg(test)]
mod tests;
