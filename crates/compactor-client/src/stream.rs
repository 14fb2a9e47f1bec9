//! [`ResponseStream`]: the events of one response, fed by a producer task that stops when the
//! stream is dropped.

use std::pin::Pin;
use std::task::{Context, Poll};

use compactor_protocol::{CompactorError, ResponseEvent};
use futures::Stream;
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::redact::Redactor;

/// Capacity of the channel between a producer and its stream: enough to absorb bursts of small
/// deltas without letting a slow consumer buffer a whole response.
pub(crate) const STREAM_CHANNEL_CAPACITY: usize = 1600;

/// A stream of decoded events of one response.
///
/// It ends after `Completed` or after the first `Err`. Dropping it cancels the task that reads
/// the response, so no work outlives the consumer.
#[derive(Debug)]
pub struct ResponseStream {
    rx: mpsc::Receiver<Result<ResponseEvent, CompactorError>>,
    _cancel_on_drop: DropGuard,
}

impl ResponseStream {
    /// A stream whose producer sends into the returned sender and watches the returned token;
    /// the error that ends it is redacted of `redactor`'s secrets.
    pub(crate) fn channel(redactor: Redactor) -> (Self, StreamSender) {
        let (tx, rx) = mpsc::channel(STREAM_CHANNEL_CAPACITY);
        let cancel = CancellationToken::new();
        let stream = Self { rx, _cancel_on_drop: cancel.clone().drop_guard() };
        (stream, StreamSender { tx, cancel, redactor })
    }
}

impl Stream for ResponseStream {
    type Item = Result<ResponseEvent, CompactorError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

/// The producer's end of a [`ResponseStream`].
#[derive(Debug)]
pub(crate) struct StreamSender {
    tx: mpsc::Sender<Result<ResponseEvent, CompactorError>>,
    pub(crate) cancel: CancellationToken,
    redactor: Redactor,
}

impl StreamSender {
    /// Sends one item; false when the consumer is gone (the producer should stop).
    pub(crate) async fn send(&self, item: Result<ResponseEvent, CompactorError>) -> bool {
        let item = item.map_err(|error| self.redactor.error(error));
        tokio::select! {
            biased;
            () = self.cancel.cancelled() => false,
            sent = self.tx.send(item) => sent.is_ok(),
        }
    }
}
