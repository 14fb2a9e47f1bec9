//! Text of one kind at a time (prose, code, JSON tool output, non-English text), for measuring
//! token counts per kind of content (D125).
//!
//! Each kind is made of fragments that look like the real thing to a tokenizer: English
//! sentences, Rust and shell lines, JSON records, and sentences in six other languages and
//! scripts. Their bytes-per-token differ the way real content's do, which is what the
//! measurements are about.

use std::fmt::Write as _;

use super::Rng;

/// A kind of content a session may be made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentKind {
    /// English prose: explanations, summaries, issue text.
    Prose,
    /// Source code and shell output.
    Code,
    /// JSON, as tools print it.
    Json,
    /// Text in German, French, Russian, Japanese, Chinese and Arabic.
    NonEnglish,
}

impl ContentKind {
    /// Every kind, in the order reports list them.
    pub const ALL: [ContentKind; 4] =
        [ContentKind::Prose, ContentKind::Code, ContentKind::Json, ContentKind::NonEnglish];

    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            ContentKind::Prose => "prose",
            ContentKind::Code => "code",
            ContentKind::Json => "json",
            ContentKind::NonEnglish => "non-english",
        }
    }
}

const PROSE: &[&str] = &[
    "The parser now accepts trailing commas, which the old grammar rejected.",
    "We should keep the write-ahead log until the checkpoint has been synced to disk.",
    "I looked at the failing test and the cause is a race between the flush and the reader.",
    "Compaction replaces older turns with a summary, so the model keeps working in a long session.",
    "Please review the migration plan before Friday; it touches every table in the schema.",
    "The benchmark regressed by twelve percent after the allocator change.",
    "None of the retries succeeded, so the request was reported as failed to the user.",
    "It isn't obvious why the cache misses, but the profile points at the hash function.",
    "Our users asked for a way to see how close they are to the limit.",
    "After the refactor, each module owns its errors and converts them at the boundary.",
];

const CODE: &[&str] = &[
    "fn flush(&mut self) -> io::Result<()> {",
    "    let page = self.pages.get_mut(&id).ok_or(Error::MissingPage { id })?;",
    "    for (index, item) in items.iter().enumerate() {",
    "        if item.len() > MAX_ITEM_BYTES { return Err(Error::TooLarge(index)); }",
    "    }",
    "impl<'a> Iterator for Cursor<'a> { type Item = (&'a [u8], u64);",
    "#[derive(Debug, Clone, PartialEq, Eq, Hash)]",
    "match self.state { State::Open => self.read_frame(buf)?, State::Closed => return Ok(0) }",
    "error[E0502]: cannot borrow `*self` as mutable because it is also borrowed as immutable",
    "  --> src/storage/btree.rs:214:17",
    "$ cargo test -p tinydb --lib -- storage::btree",
    "test storage::btree::tests::split_keeps_order ... ok",
    "def load(path: str) -> dict[str, int]:",
    "    return {k: int(v) for k, v in (line.split('=') for line in open(path))}",
    "SELECT id, name FROM users WHERE created_at > $1 ORDER BY id LIMIT 100;",
];

const NON_ENGLISH: &[&str] = &[
    "Der Parser akzeptiert jetzt nachgestellte Kommas, die die alte Grammatik abgelehnt hat.",
    "Bitte prüfe den Migrationsplan vor Freitag; er betrifft jede Tabelle im Schema.",
    "Le cache manque souvent, mais le profil désigne la fonction de hachage.",
    "Nos utilisateurs veulent savoir à quelle distance ils sont de la limite.",
    "Когда окно контекста почти заполнено, история сжимается в краткое резюме.",
    "Тест падает из-за гонки между сбросом буфера и чтением журнала.",
    "コンテキストウィンドウがいっぱいになると、履歴は要約に置き換えられます。",
    "テストが失敗する原因は、フラッシュと読み取りの競合です。",
    "上下文窗口快满时，较早的对话会被替换成一段摘要。",
    "基准测试在更换分配器之后慢了百分之十二。",
    "عندما تمتلئ نافذة السياق تقريبًا، يتم استبدال المحادثات القديمة بملخص.",
    "يريد المستخدمون معرفة مدى قربهم من الحد الأقصى.",
];

const NAMES: &[&str] = &["Ada", "Grace", "Ken", "Barbara", "Linus", "Margaret", "Dennis"];
const STATES: &[&str] = &["open", "closed", "merged", "draft"];

/// Deterministic text of `kind`, at least `bytes` long: the same for the same `seed`.
///
/// # Examples
///
/// ```
/// use compactor_testkit::workload::{ContentKind, kind_text};
///
/// let json = kind_text(ContentKind::Json, 7, 2_000);
/// assert!(json.len() >= 2_000);
/// assert!(serde_json::from_str::<serde_json::Value>(&json).is_ok());
/// assert_eq!(json, kind_text(ContentKind::Json, 7, 2_000));
/// ```
pub fn kind_text(kind: ContentKind, seed: u64, bytes: usize) -> String {
    let mut rng = Rng(super::SEED ^ seed.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 1);
    let mut out = String::with_capacity(bytes + 256);
    match kind {
        ContentKind::Prose => fill_lines(&mut rng, &mut out, PROSE, bytes, " "),
        ContentKind::Code => fill_lines(&mut rng, &mut out, CODE, bytes, "\n"),
        ContentKind::NonEnglish => fill_lines(&mut rng, &mut out, NON_ENGLISH, bytes, " "),
        ContentKind::Json => {
            out.push('[');
            let mut id = 0u64;
            while out.len() + 1 < bytes || id == 0 {
                if id > 0 {
                    out.push(',');
                }
                id += 1;
                let name = NAMES[rng.below(NAMES.len() as u64) as usize];
                let state = STATES[rng.below(STATES.len() as u64) as usize];
                let _ = write!(
                    out,
                    r#"{{"id":{},"title":"Fix {} in src/{}.rs","author":"{name}","state":"{state}","additions":{},"deletions":{},"labels":["bug","p{}"],"draft":{}}}"#,
                    10_000 + id * 7 + rng.below(7),
                    ["flaky test", "panic", "leak", "timeout"][rng.below(4) as usize],
                    ["btree", "wal", "lexer", "planner"][rng.below(4) as usize],
                    rng.below(2_000),
                    rng.below(900),
                    rng.below(4),
                    rng.below(2) == 0,
                );
            }
            out.push(']');
        }
    }
    out
}

fn fill_lines(rng: &mut Rng, out: &mut String, lines: &[&str], bytes: usize, separator: &str) {
    while out.len() < bytes {
        if !out.is_empty() {
            out.push_str(separator);
        }
        out.push_str(lines[rng.below(lines.len() as u64) as usize]);
    }
}

#[cfg(test)]
mod tests;
