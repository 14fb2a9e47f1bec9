//! Ctrl-C: the first one interrupts the session (nothing half-done is installed, and the command
//! still reports what it did); a second one quits at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use compactor_core::Session;
use tokio::task::JoinHandle;

/// The exit code of a command stopped by Ctrl-C.
pub(crate) const INTERRUPTED_EXIT_CODE: u8 = 130;

/// Watches for Ctrl-C while it lives; dropping it stops the watch.
pub(crate) struct InterruptWatch {
    task: JoinHandle<()>,
    interrupted: Arc<AtomicBool>,
}

impl InterruptWatch {
    pub(crate) fn start(session: Session) -> Self {
        let interrupted = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&interrupted);
        let task = tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            flag.store(true, Ordering::SeqCst);
            eprintln!("\ninterrupted: stopping the session (Ctrl-C again quits at once)");
            session.interrupt();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(i32::from(INTERRUPTED_EXIT_CODE));
            }
        });
        Self { task, interrupted }
    }

    /// Whether Ctrl-C was pressed.
    pub(crate) fn interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }
}

impl Drop for InterruptWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}
