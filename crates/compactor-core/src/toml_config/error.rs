//! Why a `compactor.toml` could not be used: [`ConfigFileError`], whose messages name the file,
//! the line and the key.

use std::io;
use std::path::PathBuf;

use compactor_protocol::CompactorError;

/// Why a `compactor.toml` could not be used. Every message names the file, and every variant but
/// [`ConfigFileError::Read`] the line and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// The file could not be read (see [`ConfigFileError::is_not_found`]).
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The file is not valid TOML.
    #[error("{}:{line}: invalid TOML: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// The parser's message.
        message: String,
    },
    /// A key the format does not have (a typo, or a setting of a newer version).
    #[error("{}:{line}: unknown key `{key}`{}", path.display(), expected_suffix(expected))]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// 1-based line of the key.
        line: usize,
        /// The dotted path of the key, e.g. `provider.base_ur`.
        key: String,
        /// The keys allowed at that place, when known.
        expected: Vec<String>,
    },
    /// A known key with a value of the wrong type or out of range.
    #[error("{}:{line}: invalid value for {key}: {message}", path.display())]
    InvalidValue {
        /// The file.
        path: PathBuf,
        /// 1-based line of the value.
        line: usize,
        /// The dotted path of the key, e.g. `compaction.chain[1]`.
        key: String,
        /// What is wrong and what was expected.
        message: String,
    },
}

fn expected_suffix(expected: &[String]) -> String {
    match expected {
        [] => String::new(),
        [only] => format!(" (expected {only})"),
        _ => format!(" (expected one of {})", expected.join(", ")),
    }
}

impl ConfigFileError {
    /// Whether the file does not exist.
    pub fn is_not_found(&self) -> bool {
        match self {
            ConfigFileError::Read { source, .. } => source.kind() == io::ErrorKind::NotFound,
            ConfigFileError::Syntax { .. }
            | ConfigFileError::UnknownKey { .. }
            | ConfigFileError::InvalidValue { .. } => false,
        }
    }

    /// The dotted key the error is about, when it is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigFileError::UnknownKey { key, .. } | ConfigFileError::InvalidValue { key, .. } => {
                Some(key)
            }
            ConfigFileError::Read { .. } | ConfigFileError::Syntax { .. } => None,
        }
    }
}

impl From<ConfigFileError> for CompactorError {
    fn from(err: ConfigFileError) -> Self {
        match &err {
            ConfigFileError::Read { source, .. } => CompactorError::Io(format!("{err}: {source}")),
            ConfigFileError::Syntax { .. }
            | ConfigFileError::UnknownKey { .. }
            | ConfigFileError::InvalidValue { .. } => CompactorError::Config(err.to_string()),
        }
    }
}
