//! Exit codes, and the error that carries one to `main`.

use std::fmt::Display;

use compactor_protocol::CompactorError;

/// The exit codes, as `--help` and the README document them.
pub(crate) const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  any other failure
  2  invalid command-line arguments
  3  a file named on the command line does not exist (the rollout, or --config)
  4  the rollout cannot be read (the message names the first corrupt line)
  5  the model endpoint cannot be reached
  6  the API key variable (or the analytics token variable) is unset or empty
  7  the config file has an unknown key or a bad value (the message names the key and line)
  8  the rollout cannot be written (a full disk, a file-size limit): nothing was installed
  9  the rollout is in use by another process (the message names its pid)
  10  the compacted history would not fit the model's window: nothing was installed (the
      message names both sizes and what to change)
  11  the pins alone exceed the retained budget: nothing was installed (the message names
      the pinned tokens and the budget)
  130  interrupted with Ctrl-C (the rollout holds everything completed before)";

/// Why the program stopped; each has its own exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Anything not listed below.
    Failure,
    /// An invalid command-line argument that clap cannot see (a malformed `--base-url`): clap's
    /// own usage errors exit 2 as well.
    Usage,
    /// A file named on the command line does not exist.
    MissingFile,
    /// The rollout is not a readable rollout.
    BadRollout,
    /// The model endpoint cannot be reached.
    Unreachable,
    /// The API key variable is unset.
    KeyUnset,
    /// The config file has an unknown key or a bad value.
    BadConfig,
    /// Writing the rollout failed; nothing was installed.
    RolloutWrite,
    /// Another process holds the rollout's lock.
    RolloutInUse,
    /// The compaction's result would not fit the usable window (D63 in docs/decisions.md).
    DoesNotFit,
    /// The pins alone exceed the retained budget (D142 in docs/decisions.md).
    PinsOverBudget,
    /// Ctrl-C.
    Interrupted,
}

impl Exit {
    /// The process exit code.
    pub(crate) fn code(self) -> u8 {
        match self {
            Exit::Failure => 1,
            Exit::Usage => 2,
            Exit::MissingFile => 3,
            Exit::BadRollout => 4,
            Exit::Unreachable => 5,
            Exit::KeyUnset => 6,
            Exit::BadConfig => 7,
            Exit::RolloutWrite => 8,
            Exit::RolloutInUse => 9,
            Exit::DoesNotFit => 10,
            Exit::PinsOverBudget => 11,
            Exit::Interrupted => crate::interrupt::INTERRUPTED_EXIT_CODE,
        }
    }
}

/// An error with its exit code.
#[derive(Debug)]
pub(crate) struct CliError {
    /// How the process exits.
    pub(crate) exit: Exit,
    error: anyhow::Error,
}

impl CliError {
    pub(crate) fn new(exit: Exit, error: impl Into<anyhow::Error>) -> Self {
        Self { exit, error: error.into() }
    }

    pub(crate) fn msg(exit: Exit, message: impl Display) -> Self {
        Self { exit, error: anyhow::anyhow!("{message}") }
    }

    pub(crate) fn other(error: impl Into<anyhow::Error>) -> Self {
        Self::new(Exit::Failure, error)
    }

    /// Adds context in front of the message, keeping the exit code.
    pub(crate) fn context(self, context: impl Display + Send + Sync + 'static) -> Self {
        Self { exit: self.exit, error: self.error.context(context) }
    }

    /// Writes `error: ...` and the causes to stderr.
    pub(crate) fn report(&self) {
        eprintln!("error: {}", self.error);
        for cause in self.error.chain().skip(1) {
            eprintln!("  caused by: {cause}");
        }
    }
}

impl From<CompactorError> for CliError {
    fn from(error: CompactorError) -> Self {
        let exit = exit_for(&error);
        Self::new(exit, error)
    }
}

/// The exit code of a session error: an endpoint that cannot be reached, a rollout that cannot be
/// written and a rollout another process writes have their own.
pub(crate) fn exit_for(error: &CompactorError) -> Exit {
    match error {
        CompactorError::ConnectionFailed(_) => Exit::Unreachable,
        CompactorError::Timeout(message) if message.contains("connect") => Exit::Unreachable,
        CompactorError::Cancelled => Exit::Interrupted,
        CompactorError::RolloutWrite { .. } => Exit::RolloutWrite,
        CompactorError::RolloutInUse { .. } => Exit::RolloutInUse,
        CompactorError::CompactionDoesNotFit { .. } => Exit::DoesNotFit,
        CompactorError::PinsOverBudget { .. } => Exit::PinsOverBudget,
        CompactorError::PinNotFound { .. } | CompactorError::NotPinnable { .. } => Exit::Usage,
        CompactorError::Timeout(_)
        | CompactorError::TurnAborted { .. }
        | CompactorError::Stream { .. }
        | CompactorError::ContextWindowExceeded
        | CompactorError::UnexpectedStatus { .. }
        | CompactorError::InvalidRequest(_)
        | CompactorError::CyberPolicy(_)
        | CompactorError::UsageLimitReached(_)
        | CompactorError::ServerOverloaded
        | CompactorError::QuotaExceeded(_)
        | CompactorError::UsageNotIncluded(_)
        | CompactorError::InternalServerError
        | CompactorError::RetryLimit { .. }
        | CompactorError::ResponseStreamFailed { .. }
        | CompactorError::Fatal(_)
        | CompactorError::NothingToCompact { .. }
        | CompactorError::Io(_)
        | CompactorError::Json(_)
        | CompactorError::CompactionMadeNoProgress { .. }
        | CompactorError::EventTooLarge { .. }
        | CompactorError::Rollout(_)
        | CompactorError::Config(_) => Exit::Failure,
    }
}

#[cfg(test)]
mod tests;
