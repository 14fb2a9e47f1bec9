//! `compactor pin ROLLOUT`: pin a note or a history item, or remove a pin, in a saved session. It
//! writes only under the rollout's writer lock, and refuses when another process holds it (D145).

use std::path::PathBuf;

use clap::{ArgGroup, Args};
use compactor_client::ProviderConfig;
use compactor_core::{ModelInfo, Session, SessionConfig};
use compactor_protocol::{PinId, ResponseItem};

use crate::error::{CliError, Exit};
use crate::receipt::pin_lines;
use crate::rollout::{self, ReadArgs};
use crate::settings::DEFAULT_MODEL;

/// `compactor pin` flags.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("change").required(true).args(["note", "item", "remove"])))]
pub(crate) struct PinArgs {
    /// The rollout (JSONL) of the session; a `pins` line is appended to it.
    rollout: PathBuf,
    /// Pin a note: text every later compaction keeps verbatim.
    #[arg(long, value_name = "TEXT")]
    note: Option<String>,
    /// Pin a copy of history item N, numbered as `compactor resume` prints them (a message).
    #[arg(long, value_name = "N")]
    item: Option<usize>,
    /// Remove the pin with this id (as `compactor show` lists them, e.g. pin-2).
    #[arg(long, value_name = "ID")]
    remove: Option<String>,
    #[command(flatten)]
    read: ReadArgs,
}

pub(crate) async fn run(args: PinArgs) -> Result<(), CliError> {
    // Names a missing or unreadable rollout the way the other commands do, before locking it.
    let saved = rollout::read(&args.rollout, args.read.damaged_lines()).await?;
    let remove = args
        .remove
        .as_deref()
        .map(|id| id.parse::<PinId>().map_err(|err| CliError::new(Exit::Usage, err)))
        .transpose()?;
    // No model is asked: the session only records the change.
    let config = SessionConfig::new(ProviderConfig::default(), ModelInfo::new(DEFAULT_MODEL, 0));
    let (session, _events) = Session::builder(config)
        .damaged_lines(args.read.damaged_lines())
        .resume(&saved.path)
        .await
        .map_err(|err| {
            let err = CliError::from(err);
            match err.exit {
                Exit::RolloutInUse => err.context(
                    "another process is writing this session; pin again once it has finished \
                     (nothing was written)",
                ),
                _ => err,
            }
        })?;
    let result = change(&args, remove, &session).await;
    let shutdown = session.shutdown().await;
    let message = result?;
    shutdown?;
    outln!("{message} in {}", saved.path.display());
    let pins = session.pins();
    if pins.is_empty() {
        outln!("No pins.");
    } else {
        outln!(
            "Pins (kept verbatim at the head of every compacted history from the next compaction on):"
        );
        for line in pin_lines(&pins, "  ") {
            outln!("{line}");
        }
    }
    Ok(())
}

/// Makes the change the flags ask for, and says what it did.
async fn change(
    args: &PinArgs,
    remove: Option<PinId>,
    session: &Session,
) -> Result<String, CliError> {
    if let Some(text) = &args.note {
        let id = session.pin_note(text.clone()).await?;
        return Ok(format!("Pinned note {id}"));
    }
    if let Some(index) = args.item {
        let history = session.history();
        let item: &ResponseItem = history.get(index).ok_or_else(|| {
            CliError::msg(
                Exit::Usage,
                format_args!(
                    "--item {index}: the history has {} items (0 to {}); `compactor resume` \
                     lists them",
                    history.len(),
                    history.len().saturating_sub(1)
                ),
            )
        })?;
        let id = session.pin_item(item).await?;
        return Ok(format!("Pinned item {index} ({}) as {id}", item.item_type()));
    }
    if let Some(id) = remove {
        session.unpin(id).await?;
        return Ok(format!("Removed {id}"));
    }
    Err(CliError::msg(Exit::Usage, "nothing to do: give --note, --item or --remove"))
}
