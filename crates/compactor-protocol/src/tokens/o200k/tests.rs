//! Exactness: the counter's `o200k_base` tokens equal those of a second, independent
//! implementation (`tiktoken-rs`, which vendors OpenAI's own tokenizer core), token for token,
//! over prose, code, JSON tool output and non-English text (D121).

use pretty_assertions::assert_eq;
use proptest::prelude::*;

use super::count;
use crate::tokens::TokenCounter;

/// English prose: this repository's own documentation.
const PROSE: &[&str] = &[
    include_str!("../../../../../README.md"),
    include_str!("../../../../../ARCHITECTURE.md"),
    include_str!("../../../../../docs/decisions.md"),
    "Compaction replaces the history with a summary when it nears the window. It isn't free: \
     the model re-reads what it's told, and we'd rather it didn't re-read 40 000 tokens twice.",
];

/// Source code: Rust from this repository, and small programs in other languages.
const CODE: &[&str] = &[
    include_str!("../length.rs"),
    include_str!("../../items.rs"),
    "def fib(n: int) -> int:\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    \
     return a\n\n\nif __name__ == \"__main__\":\n\tprint(fib(30))\r\n",
    "const add = (a, b) => a + b;\nexport default function App() {\n  return <div \
     className=\"app\">{items.map((x) => <Item key={x.id} {...x} />)}</div>;\n}\n",
    "SELECT u.id, COUNT(*) AS n FROM users u JOIN orders o ON o.user_id = u.id \
     WHERE o.created_at >= '2026-01-01' GROUP BY u.id HAVING COUNT(*) > 10;",
    "#!/usr/bin/env bash\nset -euo pipefail\nfor f in src/*.rs; do\n  rustfmt --check \"$f\" || \
     exit 1\ndone\n",
];

/// JSON of the kind tools print.
const JSON: &[&str] = &[
    r#"{"reason":"compiler-message","package_id":"path+file:///repo/crates/compactor-protocol#0.0.0","manifest_path":"/repo/Cargo.toml","target":{"kind":["lib"],"name":"compactor_protocol","src_path":"/repo/src/lib.rs","edition":"2024"},"message":{"rendered":"warning: unused variable: `x`\n --> src/lib.rs:3:9\n  |\n3 |     let x = 5;\n  |         ^ help: if this is intentional, prefix it with an underscore: `_x`\n\n","level":"warning","spans":[{"line_start":3,"column_start":9,"is_primary":true}]}}"#,
    r#"[{"id":1,"name":"Ada","email":"ada@example.com","tags":["admin","ops"],"balance":-12.5,"active":true,"manager":null},{"id":2,"name":"Grace","email":"grace@example.com","tags":[],"balance":1e3,"active":false}]"#,
    "{\n  \"files\": [\n    {\"path\": \"src/main.rs\", \"lines\": 120, \"sha\": \"9f2c0e1a\"},\n    \
     {\"path\": \"src/lib.rs\", \"lines\": 4096, \"sha\": \"00ff00ff\"}\n  ],\n  \"truncated\": \
     false\n}",
];

/// Text in other languages and scripts.
const NON_ENGLISH: &[&str] = &[
    "Die Kompaktierung fasst den Verlauf zusammen, wenn das Kontextfenster fast voll ist. \
     Größere Ausgaben werden gekürzt; Umlaute wie ä, ö, ü und ß bleiben erhalten.",
    "Quand la fenêtre de contexte est presque pleine, l'historique est résumé. « Ça marche ! »",
    "Когда окно контекста почти заполнено, история сжимается. Пользователи — это наше всё.",
    "コンテキストウィンドウがいっぱいになると、履歴は圧縮されます。これは日本語のテストです。",
    "上下文窗口快满时，历史记录会被压缩。这是一个中文测试句子，包含标点符号：，。！？",
    "컨텍스트 창이 거의 가득 차면 기록이 압축됩니다.",
    "عندما تمتلئ نافذة السياق تقريبًا، يتم ضغط السجل. هذا اختبار باللغة العربية.",
    "संदर्भ विंडो लगभग भर जाने पर इतिहास संकुचित हो जाता है।",
    "Όταν το παράθυρο είναι σχεδόν γεμάτο, το ιστορικό συμπιέζεται.",
    "emoji 👩\u{200d}💻🚀🔥, combining e\u{301} and zero\u{200b}width, tabs\tand\u{a0}nbsp",
];

/// Shapes that stress pre-tokenization: runs, line endings, digits, special-token spellings.
const EDGES: &[&str] = &[
    "",
    " ",
    "\n",
    "    indented\r\n\r\n\twith CRLF   \n   ",
    "1234567890 3.14159 0x1f2e 1e-10 -42 1,000,000",
    "<|endoftext|> <|fim_prefix|> <|im_start|>system",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==",
    "I'm you're they'll we've she'd IT'S DON'T",
];

fn check(text: &str) {
    let reference = tiktoken_rs::o200k_base_singleton().encode_ordinary(text);
    let ours = bpe_openai::o200k_base().encode(text);
    assert_eq!(ours, reference, "token ids of {:?}", preview(text));
    assert_eq!(count(text), reference.len() as u64, "count of {:?}", preview(text));
    assert_eq!(TokenCounter::O200k.text_tokens(text), reference.len() as u64);
}

fn preview(text: &str) -> String {
    text.chars().take(60).collect()
}

#[test]
fn prose_matches_the_reference_tokenizer() {
    PROSE.iter().copied().for_each(check);
}

#[test]
fn code_matches_the_reference_tokenizer() {
    CODE.iter().copied().for_each(check);
}

#[test]
fn json_tool_output_matches_the_reference_tokenizer() {
    JSON.iter().copied().for_each(check);
}

#[test]
fn non_english_text_matches_the_reference_tokenizer() {
    NON_ENGLISH.iter().copied().for_each(check);
}

#[test]
fn edge_shapes_match_the_reference_tokenizer() {
    EDGES.iter().copied().for_each(check);
}

#[test]
fn the_counter_differs_from_four_bytes_per_token_where_it_should() {
    // Cyrillic is two bytes a letter but few tokens a word; digits are three to a token.
    let russian = NON_ENGLISH[2];
    assert!(TokenCounter::O200k.text_tokens(russian) < TokenCounter::Bytes4.text_tokens(russian));
    let digits = "1234567890".repeat(10);
    assert_eq!(TokenCounter::O200k.text_tokens(&digits), 34);
    assert_eq!(TokenCounter::Bytes4.text_tokens(&digits), 25);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn any_text_matches_the_reference_tokenizer(text in "\\PC{0,200}") {
        let reference = tiktoken_rs::o200k_base_singleton().encode_ordinary(&text);
        prop_assert_eq!(bpe_openai::o200k_base().encode(text.as_str()), reference.clone());
        prop_assert_eq!(count(&text), reference.len() as u64);
    }

    #[test]
    fn mixed_ascii_matches_the_reference_tokenizer(
        text in "[a-zA-Z0-9 \t\r\n'\",.;:{}()<>|_-]{0,300}",
    ) {
        let reference = tiktoken_rs::o200k_base_singleton().encode_ordinary(&text);
        prop_assert_eq!(count(&text), reference.len() as u64);
    }
}
