//! Citations in the repository's text: only entries of `docs/decisions.md` and files in the
//! repository may be cited (D49 in `docs/decisions.md`; `CONTRIBUTING.md` lists the rules).
//!
//! A line is rejected when it holds any of:
//! - a section sign followed by a digit (with at most one space between), or the design
//!   document's capitalised name followed by a section sign or `.md`;
//! - a path into the folder beside the repository, or the file name of an outside document
//!   ([`OUTSIDE_DOCUMENTS`]);
//! - the word "issue" or "issues" followed by a number (`#` optional);
//! - `#` followed by digits as a word of its own (after the start of the line, a space, `(` or
//!   `[`), outside `` `code` `` spans and double-quoted strings, and not a colour after a `:`;
//! - `D` followed by digits as a word of its own (not inside an identifier, a path, a version or
//!   base64 text) when `docs/decisions.md` has no heading `## D<N>.` for that number.
//!
//! The patterns are spelled in pieces (`concat!`) so that this file passes its own check.

use std::collections::{BTreeMap, BTreeSet};

/// The file whose `## D<N>. Title` headings define the citable decisions.
pub(super) const DECISIONS: &str = "docs/decisions.md";

/// The capitalised name of the design document kept outside the repository.
const DESIGN: &str = concat!("DES", "IGN");

/// Paths and file names of documents kept outside the repository.
const OUTSIDE_DOCUMENTS: &[&str] = &[
    concat!("..", "/shared"),
    concat!("STY", "LE.md"),
    concat!("codex-", "compaction.md"),
    concat!("anch", "ors.md"),
    concat!("reference/", "interop.md"),
];

/// The decisions `docs/decisions.md` defines, by number, with the line of each definition, and
/// a violation for every number defined twice.
pub(super) fn decisions(text: &str, violations: &mut BTreeSet<String>) -> BTreeMap<u32, usize> {
    let mut defined = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        let Some(rest) = line.strip_prefix("## D") else { continue };
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let Ok(number) = digits.parse::<u32>() else { continue };
        if !rest[digits.len()..].starts_with('.') {
            continue;
        }
        if let Some(first) = defined.insert(number, index + 1) {
            violations.insert(format!(
                "{DECISIONS}:{}: D{number} is defined twice (first on line {first})",
                index + 1
            ));
        }
    }
    defined
}

/// Adds a violation for every citation of an outside document, of an issue number, and of a
/// decision that `decisions` does not hold (`None`: `docs/decisions.md` is missing).
pub(super) fn check(
    path: &str,
    text: &str,
    decisions: Option<&BTreeMap<u32, usize>>,
    violations: &mut BTreeSet<String>,
) {
    let instead = "cite a decision of docs/decisions.md (D<N>) or a file in the repository instead";
    for (index, line) in text.lines().enumerate() {
        let at = format!("{path}:{}", index + 1);
        if let Some(found) = outside_document(line) {
            violations.insert(format!(
                "{at}: cites a document outside the repository ({found}); {instead}"
            ));
        }
        if let Some(found) = issue_number(line) {
            violations.insert(format!("{at}: cites an issue number ({found}); {instead}"));
        }
        for number in decision_numbers(line) {
            match decisions {
                Some(defined) if defined.contains_key(&number) => {}
                Some(_) => {
                    violations.insert(format!(
                        "{at}: cites D{number}, which {DECISIONS} does not define"
                    ));
                }
                None => {
                    violations.insert(format!("{at}: cites D{number}, but {DECISIONS} is missing"));
                }
            }
        }
    }
}

/// The first citation of an outside document in `line`, as written.
fn outside_document(line: &str) -> Option<String> {
    for (at, c) in line.char_indices() {
        if c != '§' {
            continue;
        }
        let rest = &line[at + c.len_utf8()..];
        let rest = rest.strip_prefix(' ').unwrap_or(rest);
        if rest.starts_with(|c: char| c.is_ascii_digit()) {
            let number: String =
                rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
            return Some(format!("§{}", number.trim_end_matches('.')));
        }
    }
    for (at, _) in line.match_indices(DESIGN) {
        if !is_word_start(line, at) {
            continue;
        }
        let rest = &line[at + DESIGN.len()..];
        if rest.starts_with(".md") {
            return Some(format!("{DESIGN}.md"));
        }
        if rest.trim_start().starts_with('§') {
            return Some(format!("{DESIGN} §"));
        }
    }
    OUTSIDE_DOCUMENTS.iter().find(|name| line.contains(**name)).map(|name| (*name).to_owned())
}

/// The first issue number cited in `line`, as written: after the word "issue" or "issues", or
/// a bare `#` and digits.
fn issue_number(line: &str) -> Option<String> {
    let lower = line.to_ascii_lowercase();
    for (at, _) in lower.match_indices("issue") {
        if !is_word_start(&lower, at) {
            continue;
        }
        let rest = &lower[at + "issue".len()..];
        let rest = rest.strip_prefix('s').unwrap_or(rest);
        let spaced = rest.trim_start();
        if spaced.len() == rest.len() {
            continue;
        }
        let number = spaced.strip_prefix('#').unwrap_or(spaced);
        let digits = number.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 && !number[digits..].starts_with(is_word_char) {
            let end = line.len() - number.len() + digits;
            return Some(line[at..end].to_owned());
        }
    }
    let quoted = quoted_bytes(line);
    for (at, _) in line.match_indices('#') {
        if quoted[at] {
            continue;
        }
        let before = line[..at].chars().next_back();
        if before.is_some_and(|c| !c.is_whitespace() && c != '(' && c != '[') {
            continue;
        }
        let rest = &line[at + 1..];
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 || rest[digits..].starts_with(is_word_char) {
            continue;
        }
        // `color: #333` is a colour, not an issue.
        if line[..at].trim_end().ends_with(':') {
            continue;
        }
        return Some(line[at..at + 1 + digits].to_owned());
    }
    None
}

/// Every `D<N>` cited in `line`, in order.
fn decision_numbers(line: &str) -> Vec<u32> {
    // Characters that make a `D<N>` part of a larger token: an identifier, a path, a version,
    // a base64 string or a hyphenated name.
    let joins = |c: char| is_word_char(c) || matches!(c, '/' | '+' | '=' | '-' | '.');
    let mut numbers = Vec::new();
    for (at, _) in line.match_indices('D') {
        if line[..at].chars().next_back().is_some_and(joins) {
            continue;
        }
        let rest = &line[at + 1..];
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 {
            continue;
        }
        let after = rest[digits..].chars().next();
        // A sentence may end right after a citation: `see D12.`
        let ends_sentence = after == Some('.')
            && !rest[digits + 1..].starts_with(|c: char| c.is_ascii_alphanumeric());
        if after.is_some_and(joins) && !ends_sentence {
            continue;
        }
        if let Ok(number) = rest[..digits].parse() {
            numbers.push(number);
        }
    }
    numbers
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn is_word_start(text: &str, at: usize) -> bool {
    !text[..at].chars().next_back().is_some_and(is_word_char)
}

/// For each byte of `line`, whether it lies inside a `` `code` `` span or a `"string"`; the
/// delimiters themselves count as inside.
fn quoted_bytes(line: &str) -> Vec<bool> {
    let mut quoted = vec![false; line.len()];
    let mut open: Option<char> = None;
    let mut escaped = false;
    for (at, c) in line.char_indices() {
        let inside = match open {
            Some('"') if escaped => {
                escaped = false;
                true
            }
            Some('"') if c == '\\' => {
                escaped = true;
                true
            }
            Some(delimiter) if c == delimiter => {
                open = None;
                true
            }
            Some(_) => true,
            None if c == '`' || c == '"' => {
                open = Some(c);
                true
            }
            None => false,
        };
        quoted[at..at + c.len_utf8()].fill(inside);
    }
    quoted
}
