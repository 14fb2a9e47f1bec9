//! Running a session call while its events arrive, so the channel never fills and the user
//! sees progress.

use std::future::Future;

use compactor_protocol::EventMsg;
use tokio::sync::mpsc;

/// Runs `work` to its end, handing every event that arrives meanwhile (and those already queued
/// when it ends) to `on_event`.
pub(crate) async fn drive<T>(
    work: impl Future<Output = T>,
    events: &mut mpsc::Receiver<EventMsg>,
    mut on_event: impl FnMut(&EventMsg),
) -> T {
    tokio::pin!(work);
    loop {
        tokio::select! {
            output = &mut work => {
                while let Ok(event) = events.try_recv() {
                    on_event(&event);
                }
                return output;
            }
            Some(event) = events.recv() => on_event(&event),
        }
    }
}
