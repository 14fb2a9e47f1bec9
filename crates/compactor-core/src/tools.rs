//! The harness's tools: core hands every tool call of a response to a [`ToolHandler`].

use std::future::Future;
use std::pin::Pin;

use compactor_protocol::{ResponseItem, ToolOutput};

/// One tool call the model made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    /// The id the output must carry.
    pub call_id: String,
    /// The tool's name (`local_shell` for shell calls).
    pub name: String,
    /// What kind of call it is.
    pub kind: ToolCallKind,
    /// The arguments (a JSON string) or the freeform input.
    pub input: String,
}

/// The kinds of tool calls, which decide the output item's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolCallKind {
    /// `function_call`, answered by `function_call_output`.
    Function,
    /// `custom_tool_call`, answered by `custom_tool_call_output`.
    Custom,
    /// `local_shell_call`, answered by `function_call_output`.
    LocalShell,
}

impl ToolCall {
    /// The call carried by `item`, when it is a call the harness runs.
    pub fn from_item(item: &ResponseItem) -> Option<Self> {
        match item {
            ResponseItem::FunctionCall { name, arguments, call_id, .. } => Some(Self {
                call_id: call_id.clone(),
                name: name.clone(),
                kind: ToolCallKind::Function,
                input: arguments.clone(),
            }),
            ResponseItem::CustomToolCall { name, input, call_id, .. } => Some(Self {
                call_id: call_id.clone(),
                name: name.clone(),
                kind: ToolCallKind::Custom,
                input: input.clone(),
            }),
            ResponseItem::LocalShellCall { call_id: Some(call_id), action, .. } => Some(Self {
                call_id: call_id.clone(),
                name: "local_shell".to_owned(),
                kind: ToolCallKind::LocalShell,
                input: serde_json::to_string(action).unwrap_or_default(),
            }),
            _ => None,
        }
    }

    /// The output item answering this call.
    pub fn output_item(&self, output: ToolOutput) -> ResponseItem {
        match self.kind {
            ToolCallKind::Function | ToolCallKind::LocalShell => {
                ResponseItem::FunctionCallOutput { call_id: self.call_id.clone(), output }
            }
            ToolCallKind::Custom => ResponseItem::CustomToolCallOutput {
                call_id: self.call_id.clone(),
                name: Some(self.name.clone()),
                output,
            },
        }
    }
}

/// A boxed future of a tool's output.
pub type ToolFuture<'a> = Pin<Box<dyn Future<Output = ToolOutput> + Send + 'a>>;

/// Runs the model's tool calls. Implemented by the harness.
pub trait ToolHandler: Send + Sync + 'static {
    /// Runs one call and returns its output (failures are outputs too: the model reads them).
    fn call<'a>(&'a self, call: &'a ToolCall) -> ToolFuture<'a>;
}

/// A handler without tools: every call is answered `unsupported call: <name>`.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTools;

impl ToolHandler for NoTools {
    fn call<'a>(&'a self, call: &'a ToolCall) -> ToolFuture<'a> {
        let output = ToolOutput::Text(format!("unsupported call: {}", call.name));
        Box::pin(std::future::ready(output))
    }
}
