//! Wire and persisted types of Compactor (layer L0).
//!
//! Every type that crosses a crate boundary lives here, with the serde attributes that produce
//! the exact JSON of the Responses API and of Compactor's rollouts. This crate depends only on
//! `serde`, `serde_json`, `siphasher` and `thiserror`: no tokio, no I/O, and no other Compactor
//! crate.
//!
//! - Items: [`ResponseItem`], [`ContentItem`], [`MessagePhase`], [`PassThroughList`].
//! - Requests: [`Prompt`], [`TurnSettings`], [`ResponsesApiRequest`], [`WsClientMessage`],
//!   [`CompactRequest`], [`CompactResponse`].
//! - Streams: [`StreamEventPayload`], [`ResponseEvent`], [`TokenUsage`], [`TokenUsageInfo`],
//!   [`RateLimitSnapshot`].
//! - Sessions and rollouts: [`EventMsg`], [`TurnItem`], [`ErrorEvent`], [`CompactedItem`],
//!   [`RolloutItem`], [`RolloutLine`] (and [`RolloutLine::parse`], the one rule for a damaged
//!   line: [`LineError`], [`LineDamage`]), [`TurnContextItem`], [`SessionMeta`].
//! - Pins and receipts: [`Pin`] with its [`PinId`] and [`PinContent`], the `pins` line
//!   ([`PinsItem`]), and [`CompactionReceipt`] with one [`ItemReceipt`] per input item
//!   ([`ItemOutcome`]), its [`ReceiptTotals`] and [`PinReceipt`]s.
//! - The progress ledger's records: [`LedgerSnapshot`] (in a [`CompactedItem`]),
//!   [`OpenItemsItem`] (a rollout line of its own), [`ToolEffect`] and the entries.
//! - Compaction vocabulary: [`CompactionTrigger`], [`CompactionReason`],
//!   [`CompactionImplementation`], [`CompactionPhase`], [`CompactionStrategy`],
//!   [`CompactionStatus`], [`InitialContextInjection`], [`V2TriggerForm`].
//! - User turns: [`ContextualMarkers`] and [`is_user_turn_boundary`], the one rule every crate
//!   counts user turns by.
//! - [`Fingerprint`]: keyed 128-bit fingerprints of items ([`ResponseItem::fingerprint`]).
//! - [`tokens`]: the byte-based token estimates; [`display`]: one-line history rendering.
//! - [`CompactorError`]: the error taxonomy, with [`CompactorError::is_retryable`].
//!
//! # Examples
//!
//! ```
//! use compactor_protocol::ResponseItem;
//!
//! let trigger = ResponseItem::context_compaction_trigger();
//! assert_eq!(serde_json::to_string(&trigger).unwrap(), r#"{"type":"context_compaction"}"#);
//! let item: ResponseItem =
//!     serde_json::from_str(r#"{"type":"ghost_snapshot","ghost_commit":{"id":"g1"}}"#).unwrap();
//! assert_eq!(item.item_type(), "ghost_snapshot");
//! ```

pub mod compaction;
pub mod display;
pub mod error;
pub mod events;
pub mod fingerprint;
pub mod items;
pub mod json;
pub mod ledger;
pub mod pins;
pub mod receipt;
pub mod request;
pub mod rollout;
pub mod stream;
pub mod tokens;
pub mod user_turn;

pub use compaction::{
    CompactionImplementation, CompactionPhase, CompactionReason, CompactionStatus,
    CompactionStrategy, CompactionTrigger, InitialContextInjection, UnknownImplementation,
    V2TriggerForm,
};
pub use error::{CompactorError, CompactorErrorInfo};
pub use events::{ContextCompactionItem, ErrorEvent, EventMsg, HookEventName, TurnItem};
pub use fingerprint::{Fingerprint, FingerprintKey};
pub use items::{
    ContentItem, LocalShellAction, MessagePhase, PassThroughList, ReasoningContent,
    ReasoningSummary, ResponseItem, ToolOutput, WebSearchAction, content_text,
};
pub use ledger::{
    FileAction, LedgerCommand, LedgerEvicted, LedgerFile, LedgerPatch, LedgerPendingCall,
    LedgerRequest, LedgerSnapshot, OpenItemsItem, PatchedFile, ToolEffect,
};
pub use pins::{InvalidPinId, Pin, PinContent, PinId, PinsItem, pin_slot_items};
pub use receipt::{
    CategoryTotal, CompactionReceipt, ItemOutcome, ItemReceipt, PinPlacement, PinReceipt,
    ReceiptStatus, ReceiptTotals,
};
pub use request::{
    CompactRequest, CompactResponse, ContextManagement, InputItems, Prompt, Reasoning,
    ResponsesApiRequest, TextControls, TextFormat, ToolSpec, TurnSettings, WsClientMessage,
    borrowed_items, into_owned_items, owned_items,
};
pub use rollout::{
    CompactedItem, LineDamage, LineError, RolloutItem, RolloutLine, SessionMeta, TurnContextItem,
};
pub use stream::{
    InputTokensDetails, OutputTokensDetails, RateLimitSnapshot, RateLimitWindow, ResponseEvent,
    ResponseUsage, StreamEventPayload, TokenUsage, TokenUsageInfo,
};
pub use user_turn::{ContextualMarkers, is_user_turn_boundary};
