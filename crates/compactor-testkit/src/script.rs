//! Scripted answers: per-request event batches for HTTP, per-connection request slots for
//! WebSocket, and JSON answers for `/responses/compact`.

use serde_json::Value;

use crate::faults::{Fault, HandshakeFault};

/// The answer to one `POST /responses`: a batch of events streamed as SSE.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HttpScript {
    /// The events, stamped when sent ([`crate::events::stamp_events`]).
    pub events: Vec<Value>,
    /// Faults of this request (added to any from the server's fault queue).
    pub faults: Vec<Fault>,
    /// Extra response headers, e.g. `x-codex-turn-state` or `openai-model`.
    pub headers: Vec<(String, String)>,
}

impl HttpScript {
    /// A batch of events with no faults and no extra headers.
    pub fn new(events: Vec<Value>) -> Self {
        Self { events, ..Self::default() }
    }

    /// Adds a fault.
    #[must_use]
    pub fn with_fault(mut self, fault: Fault) -> Self {
        self.faults.push(fault);
        self
    }

    /// Adds a response header.
    #[must_use]
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

impl From<Vec<Value>> for HttpScript {
    fn from(events: Vec<Value>) -> Self {
        Self::new(events)
    }
}

/// The answer to one `POST /responses/compact`.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactScript {
    /// The HTTP status.
    pub status: u16,
    /// The JSON body.
    pub body: Value,
    /// Faults of this request (added to any from the server's fault queue).
    pub faults: Vec<Fault>,
}

impl CompactScript {
    /// A 200 answer with this body.
    pub fn json(body: Value) -> Self {
        Self { status: 200, body, faults: Vec::new() }
    }

    /// Adds a fault.
    #[must_use]
    pub fn with_fault(mut self, fault: Fault) -> Self {
        self.faults.push(fault);
        self
    }
}

/// One request slot of a scripted WebSocket connection: the events sent, one per text frame,
/// after the slot's client message arrives. Every client message takes a slot,
/// `response.processed` included (script `vec![]` for it, D13).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WsSlot {
    /// The events, stamped when sent.
    pub events: Vec<Value>,
    /// Faults of this slot.
    pub faults: Vec<Fault>,
}

impl WsSlot {
    /// A slot with these events and no faults.
    pub fn new(events: Vec<Value>) -> Self {
        Self { events, faults: Vec::new() }
    }

    /// Adds a fault.
    #[must_use]
    pub fn with_fault(mut self, fault: Fault) -> Self {
        self.faults.push(fault);
        self
    }
}

impl From<Vec<Value>> for WsSlot {
    fn from(events: Vec<Value>) -> Self {
        Self::new(events)
    }
}

/// What a scripted WebSocket connection does once its slots are used up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AfterSlots {
    /// Send a Close frame (code 1000) at the next client message and end the connection.
    #[default]
    Close,
    /// Keep the connection open: further messages are recorded and get no answer.
    KeepOpen,
}

/// A scripted WebSocket connection, taken by the next accepted handshake (connections are served
/// in the order they are pushed).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WsConnectionScript {
    /// The request slots, in order.
    pub slots: Vec<WsSlot>,
    /// Extra headers on the `101 Switching Protocols` answer, e.g. `x-codex-turn-state`.
    pub response_headers: Vec<(String, String)>,
    /// Faults of the handshake (added to any from the server's handshake fault queue).
    pub handshake_faults: Vec<HandshakeFault>,
    /// What happens when the slots are used up.
    pub after_slots: AfterSlots,
}

impl WsConnectionScript {
    /// A connection with these slots.
    pub fn new<S: Into<WsSlot>>(slots: impl IntoIterator<Item = S>) -> Self {
        Self { slots: slots.into_iter().map(Into::into).collect(), ..Self::default() }
    }

    /// Adds a handshake response header.
    #[must_use]
    pub fn with_response_header(mut self, name: &str, value: &str) -> Self {
        self.response_headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Adds a handshake fault.
    #[must_use]
    pub fn with_handshake_fault(mut self, fault: HandshakeFault) -> Self {
        self.handshake_faults.push(fault);
        self
    }

    /// Sets what happens when the slots are used up.
    #[must_use]
    pub fn after_slots(mut self, after: AfterSlots) -> Self {
        self.after_slots = after;
        self
    }
}
