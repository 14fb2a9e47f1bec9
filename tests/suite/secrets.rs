//! Secrets (D27): with a recognisable API key, succeeding and failing
//! compactions of every implementation leave the key in no log line (captured at TRACE from
//! every thread of the runtime), error, event, analytics record, trace payload or rollout line;
//! rollout and trace files are created 0600.
//!
//! The failing servers echo the key back in their error messages, as real endpoints do with
//! "Incorrect API key provided: ...": the client must redact it wherever it reports them.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use compactor_client::{KeySource, SecretString};
use compactor_protocol::CompactorError;
use compactor_testkit::Fault;
use tracing_subscriber::fmt::MakeWriter;

use crate::common::{Harness, Options, Transport, session_config};

/// The key: unlikely to appear anywhere by chance.
const KEY: &str = "sk-canary-7f3b9c2e41d8-DO-NOT-LEAK";

/// Log output collected in memory, from any thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Everything the sessions produced, by where it came from.
#[derive(Default)]
struct Outputs(Vec<(String, String)>);

impl Outputs {
    fn add(&mut self, what: impl Into<String>, text: impl Into<String>) {
        self.0.push((what.into(), text.into()));
    }

    fn error(&mut self, what: &str, error: &CompactorError) {
        self.add(what, format!("{error} / {error:?}"));
    }

    /// The session's events, analytics records, rollout and trace files, and `Debug` output.
    async fn harness(&mut self, name: &str, h: &mut Harness) {
        h.drain();
        h.session.flush().await.unwrap();
        for event in &h.seen {
            self.add(format!("{name} event"), serde_json::to_string(event).unwrap());
            self.add(format!("{name} event"), format!("{event:?}"));
        }
        for event in h.analytics.compaction_events() {
            self.add(format!("{name} analytics"), serde_json::to_string(&event).unwrap());
        }
        self.add(format!("{name} session"), format!("{:?} {:?}", h.session, h.session.config()));
        self.add(format!("{name} client"), format!("{:?}", h.session.client()));
        let rollout = h.rollout_path();
        assert_private_file(&rollout);
        self.add(format!("{name} rollout"), std::fs::read_to_string(&rollout).unwrap());
        let traces = h.dir.path().join("traces");
        let mut files = 0;
        walk(&traces, &mut |path| {
            files += 1;
            assert_private_file(path);
            self.add(
                format!("{name} trace {}", path.display()),
                std::fs::read_to_string(path).unwrap(),
            );
        });
        assert!(files >= 3, "{name}: a trace bundle was written ({files} files)");
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn assert_private_file(path: &Path) {
    assert_eq!(mode(path), 0o600, "{} is 0{:o}", path.display(), mode(path));
}

/// Calls `file` for every file under `dir`; directories must be private too.
fn walk(dir: &Path, file: &mut dyn FnMut(&Path)) {
    assert_eq!(mode(dir) & 0o077, 0, "{} is 0{:o}", dir.display(), mode(dir));
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, file);
        } else {
            file(&path);
        }
    }
}

/// The text a server sends back when it rejects the key.
fn echo() -> String {
    format!(
        "Incorrect API key provided: {KEY}. You can find your API key at https://example.invalid."
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Implementation {
    V2Ws,
    V2Http,
    V1,
    Local,
}

/// One session with the key: a turn, a successful compaction, failing compactions whose server
/// echoes the key (a 401, and a `response.failed` where the implementation streams), a turn.
async fn exercise(implementation: Implementation, outputs: &mut Outputs) {
    let name = format!("{implementation:?}");
    let server = crate::common::reference_model().await;
    let dir = tempfile::tempdir().unwrap();
    let transport = match implementation {
        Implementation::V2Ws => Transport::Ws,
        Implementation::V2Http | Implementation::V1 | Implementation::Local => Transport::Http,
    };
    let options = Options { transport, response_processed: true, ..Options::default() };
    let mut config = session_config(&server, dir.path(), &options);
    config.provider.key = KeySource::Value(SecretString::new(KEY));
    match implementation {
        Implementation::V2Ws | Implementation::V2Http => {}
        Implementation::V1 => config.features.remote_compaction_v2 = false,
        Implementation::Local => {
            config.compaction.chain = vec![compactor_protocol::CompactionImplementation::Responses];
        }
    }
    let mut h = Harness::with_config(server, config, dir).await;

    h.turn("write the parser").await.unwrap();
    h.compact().await.unwrap_or_else(|e| panic!("{name}: {e}"));

    // A 401 that echoes the key.
    let unauthorized = Fault::error(401, "invalid_api_key", &echo());
    match implementation {
        Implementation::V2Ws => h.server.push_ws_faults([unauthorized]),
        Implementation::V2Http | Implementation::Local => h.server.push_http_faults([unauthorized]),
        Implementation::V1 => h.server.push_compact_faults([unauthorized]),
    }
    let error = h.compact().await.expect_err(&name);
    assert!(
        matches!(&error, CompactorError::UnexpectedStatus { status: 401, body } if body.contains("<redacted>")),
        "{name}: {error:?}"
    );
    outputs.error(&format!("{name} 401"), &error);

    // A `response.failed` that echoes the key (streams only).
    if implementation != Implementation::V1 {
        let failed = Fault::failed("invalid_prompt", &echo());
        match implementation {
            Implementation::V2Ws => h.server.push_ws_faults([failed]),
            Implementation::V2Http | Implementation::Local => h.server.push_http_faults([failed]),
            Implementation::V1 => unreachable!(),
        }
        let error = h.compact().await.expect_err(&name);
        assert!(matches!(error, CompactorError::InvalidRequest(_)), "{name}: {error:?}");
        outputs.error(&format!("{name} response.failed"), &error);
    }

    h.turn("now add tests").await.unwrap();
    outputs.harness(&name, &mut h).await;

    // The key was sent: the search below is meaningful.
    let authorization = format!("Bearer {KEY}");
    let sent = h
        .server
        .requests()
        .iter()
        .all(|r| r.header("authorization") == Some(authorization.as_str()))
        && h.server
            .handshakes()
            .iter()
            .all(|r| r.header("authorization") == Some(authorization.as_str()));
    assert!(sent, "{name}: every request carries the key");
    h.server.assert_no_violations();
}

/// The runtime is built here so that every thread it starts (the blocking pool included, where
/// file I/O runs) logs into the capture.
#[test]
fn the_key_never_leaks_from_a_compaction() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let dispatch = tracing::Dispatch::new(subscriber);
    let on_thread = dispatch.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .on_thread_start(move || {
            // The guard lives as long as the thread: the runtime's threads log into the capture.
            std::mem::forget(tracing::dispatcher::set_default(&on_thread));
        })
        .build()
        .unwrap();
    let mut outputs = Outputs::default();
    tracing::dispatcher::with_default(&dispatch, || {
        runtime.block_on(async {
            let all = async {
                for implementation in [
                    Implementation::V2Ws,
                    Implementation::V2Http,
                    Implementation::V1,
                    Implementation::Local,
                ] {
                    Box::pin(exercise(implementation, &mut outputs)).await;
                }
            };
            tokio::time::timeout(crate::common::WAIT * 3, Box::pin(all))
                .await
                .expect("the test timed out");
        });
    });
    drop(runtime);

    let logs = logs.text();
    assert!(logs.contains("TRACE"), "the capture works at TRACE");
    assert!(logs.contains("compaction attempt failed"), "core's warnings are captured");
    let leaks: Vec<&str> = logs.lines().filter(|line| line.contains(KEY)).collect();
    assert!(leaks.is_empty(), "{} log line(s) carry the key:\n{}", leaks.len(), leaks.join("\n"));
    let leaks: Vec<String> = outputs
        .0
        .iter()
        .filter(|(_, text)| text.contains(KEY))
        .map(|(what, text)| format!("{what}: {text}"))
        .collect();
    assert!(leaks.is_empty(), "{} output(s) carry the key:\n{}", leaks.len(), leaks.join("\n"));
    assert!(outputs.0.len() > 50, "{} outputs searched", outputs.0.len());
}
