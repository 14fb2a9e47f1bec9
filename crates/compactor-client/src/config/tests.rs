//! Tests of the retry policy's delays.

use std::time::Duration;

use super::RetryPolicy;

#[test]
fn delays_follow_the_backoff_and_never_pass_the_maximum() {
    let policy = RetryPolicy {
        max_retries: 5,
        base_delay: Duration::from_millis(200),
        max_delay: Duration::from_secs(2),
    };
    let ms = Duration::from_millis;
    // (retry, requested delay, shortest, longest)
    let cases = [
        (1, None, ms(180), ms(220)),
        (2, None, ms(360), ms(440)),
        (3, None, ms(720), ms(880)),
        (5, None, ms(2_000), ms(2_000)),
        (40, None, ms(2_000), ms(2_000)),
        (1, Some(ms(1_500)), ms(1_500), ms(1_500)),
        (1, Some(Duration::from_secs(3_600)), ms(2_000), ms(2_000)),
        (3, Some(Duration::ZERO), Duration::ZERO, Duration::ZERO),
    ];
    for (retry, requested, shortest, longest) in cases {
        let delay = policy.delay(retry, requested);
        assert!(
            (shortest..=longest).contains(&delay),
            "retry {retry}, requested {requested:?}: {delay:?}"
        );
    }
}
