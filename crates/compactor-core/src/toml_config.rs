//! `compactor.toml`: the session settings as a file (DESIGN §8.14). Owned by the CLI work in progress.
