//! Tests of the conversion into `CompactorError`.

use pretty_assertions::assert_eq;

use super::*;

#[test]
fn converts_into_compactor_errors() {
    #[track_caller]
    fn check(err: Error, expected: &str) {
        assert_eq!(format!("{:?}", CompactorError::from(err)), expected);
    }
    check(
        Error::Bind { port: 80, source: io::Error::other("permission denied") },
        r#"Io("failed to bind 127.0.0.1:80: permission denied")"#,
    );
    check(
        Error::WaitTimedOut {
            what: "2 HTTP requests (saw 1)".to_owned(),
            timeout: Duration::from_secs(1),
        },
        r#"Timeout("timed out after 1s waiting for 2 HTTP requests (saw 1)")"#,
    );
    check(
        Error::ShutdownTimedOut { timeout: Duration::from_secs(5) },
        r#"Timeout("server did not stop within 5s; remaining tasks were aborted")"#,
    );
    check(
        Error::Violations { count: 1, details: "x: y".to_owned() },
        r#"Fatal("1 protocol violation(s):\nx: y")"#,
    );
}
