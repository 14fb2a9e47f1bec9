//! Provider-aware compaction (D114): a provider that refuses the v2 trigger is marked as
//! lacking v2 for the session, once; an empty v2 answer is only a transient failure; a provider
//! that says it compacts remotely is never marked.

use compactor_core::{ProviderKind, RemoteCompaction};
use compactor_protocol::{CompactionImplementation, CompactionStatus, EventMsg};
use compactor_testkit::events::{ev_assistant_message, ev_completed, ev_response_created};
use compactor_testkit::{ErrorReply, Fault, HttpScript, TestServer};
use pretty_assertions::assert_eq;
use serde_json::Value;

use crate::common::{Harness, Options, Transport, session_config};

fn reply(id: &str, text: &str) -> Vec<Value> {
    vec![ev_response_created(id), ev_assistant_message(&format!("m-{id}"), text), ev_completed(id)]
}

/// The API's refusal of the v2 trigger item: a 400 naming its `type`.
fn trigger_refused() -> HttpScript {
    let reply = ErrorReply::invalid_request(
        "invalid_value",
        "Invalid value: 'context_compaction'. Supported values are: 'message', 'function_call', \
         'function_call_output' and 'reasoning'.",
    )
    .with_param("input[3].type");
    HttpScript::new(Vec::new()).with_fault(Fault::Reject(reply))
}

/// A completed v2 response without any compaction item.
fn no_compaction_item(id: &str) -> Vec<Value> {
    reply(id, "I would rather not.")
}

/// A session over HTTP against `server`, on loopback (kind `other` unless `edit` says), whose
/// chain is `v2 -> local`.
async fn session(
    server: TestServer,
    edit: impl FnOnce(&mut compactor_core::SessionConfig),
) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let options =
        Options { transport: Transport::Http, response_processed: false, ..Options::default() };
    let mut config = session_config(&server, dir.path(), &options);
    config.provider_kind = None;
    config.compaction.chain =
        vec![CompactionImplementation::ResponsesCompactionV2, CompactionImplementation::Responses];
    edit(&mut config);
    Harness::with_config(server, config, dir).await
}

fn warnings(h: &Harness) -> Vec<String> {
    h.seen
        .iter()
        .filter_map(|event| match event {
            EventMsg::Warning { message } if message.contains("remote compaction v2") => {
                Some(message.clone())
            }
            _ => None,
        })
        .collect()
}

/// Whether request `index` to `/responses` ends with the v2 trigger.
fn is_v2(h: &Harness, index: usize) -> bool {
    let request = &h.server.responses_requests()[index];
    request.input().last().and_then(|item| item["type"].as_str()) == Some("context_compaction")
}

#[tokio::test]
async fn a_refused_trigger_marks_the_provider_once_and_later_compactions_go_straight_to_local() {
    let server = TestServer::scripted().await.unwrap();
    server.push_sse(reply("r1", "first"));
    server.push_http(trigger_refused());
    server.push_sse(reply("s1", "SUMMARY ONE"));
    server.push_sse(reply("r2", "second"));
    server.push_sse(reply("s2", "SUMMARY TWO"));
    server.push_sse(reply("r3", "third"));
    server.push_sse(reply("s3", "SUMMARY THREE"));
    let mut h = session(server, |_| {}).await;
    assert_eq!(h.session.config().provider_kind(), ProviderKind::Other);

    h.turn("first task").await.unwrap();
    h.compact().await.unwrap();
    h.turn("second task").await.unwrap();
    h.compact().await.unwrap();
    h.turn("third task").await.unwrap();
    h.compact().await.unwrap();

    assert!(is_v2(&h, 1), "the first compaction tries v2");
    let v2_requests = (0..h.server.responses_requests().len()).filter(|&i| is_v2(&h, i)).count();
    assert_eq!(v2_requests, 1, "v2 is not tried again");
    let warnings = warnings(&h);
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(warnings[0].contains("input[3].type"), "{warnings:?}");

    let events = h.analytics_events(4).await;
    let attempts: Vec<(CompactionImplementation, CompactionStatus)> =
        events.iter().map(|event| (event.implementation, event.status)).collect();
    assert_eq!(
        attempts,
        [
            (CompactionImplementation::ResponsesCompactionV2, CompactionStatus::Failed),
            (CompactionImplementation::Responses, CompactionStatus::Completed),
            (CompactionImplementation::Responses, CompactionStatus::Completed),
            (CompactionImplementation::Responses, CompactionStatus::Completed),
        ]
    );
    let error = events[0].error.as_deref().unwrap();
    assert!(error.contains("does not support remote compaction v2"), "{error}");
    assert_eq!(events[0].compaction_id, events[1].compaction_id, "one compaction, two attempts");
    let errors = h.seen.iter().filter(|event| matches!(event, EventMsg::Error(_))).count();
    assert_eq!(errors, 0, "the chain went on: no compaction failed");
    h.server.assert_no_violations();
}

#[tokio::test]
async fn a_chain_of_v2_alone_goes_on_locally_once_the_trigger_is_refused() {
    let server = TestServer::scripted().await.unwrap();
    server.push_sse(reply("r1", "first"));
    server.push_http(trigger_refused());
    server.push_sse(reply("s1", "SUMMARY"));
    let mut h = session(server, |config| {
        config.compaction.chain = vec![CompactionImplementation::ResponsesCompactionV2];
    })
    .await;
    h.turn("first task").await.unwrap();
    h.compact().await.unwrap();
    let events = h.analytics_events(2).await;
    assert_eq!(events[1].implementation, CompactionImplementation::Responses);
    assert_eq!(events[1].status, CompactionStatus::Completed);
    assert_eq!(warnings(&h).len(), 1);
}

#[tokio::test]
async fn an_empty_v2_answer_is_transient_and_never_marks_the_provider() {
    let server = TestServer::scripted().await.unwrap();
    server.push_sse(reply("r1", "first"));
    server.push_sse(no_compaction_item("c1"));
    server.push_sse(reply("s1", "SUMMARY"));
    server.push_sse(reply("r2", "second"));
    server.push_sse(vec![
        ev_response_created("c2"),
        compactor_testkit::events::ev_context_compaction("cc-2", "ENC"),
        ev_completed("c2"),
    ]);
    let mut h = session(server, |_| {}).await;
    h.turn("first task").await.unwrap();
    h.compact().await.unwrap();
    h.turn("second task").await.unwrap();
    h.compact().await.unwrap();
    assert!(is_v2(&h, 1) && is_v2(&h, 4), "v2 is tried again after an empty answer");
    assert_eq!(warnings(&h), Vec::<String>::new());
    let events = h.analytics_events(3).await;
    let attempts: Vec<(CompactionImplementation, CompactionStatus)> =
        events.iter().map(|event| (event.implementation, event.status)).collect();
    assert_eq!(
        attempts,
        [
            (CompactionImplementation::ResponsesCompactionV2, CompactionStatus::Failed),
            (CompactionImplementation::Responses, CompactionStatus::Completed),
            (CompactionImplementation::ResponsesCompactionV2, CompactionStatus::Completed),
        ]
    );
    h.server.assert_no_violations();
}

#[tokio::test]
async fn a_provider_that_says_it_compacts_remotely_is_never_marked() {
    for edit in [
        (|config: &mut compactor_core::SessionConfig| {
            config.provider_kind = Some(ProviderKind::OpenAi);
        }) as fn(&mut compactor_core::SessionConfig),
        |config| config.remote_compaction = RemoteCompaction::Supported,
    ] {
        let server = TestServer::scripted().await.unwrap();
        server.push_sse(reply("r1", "first"));
        server.push_http(trigger_refused());
        server.push_sse(reply("s1", "SUMMARY"));
        server.push_sse(reply("r2", "second"));
        server.push_http(trigger_refused());
        server.push_sse(reply("s2", "SUMMARY TWO"));
        let mut h = session(server, edit).await;
        h.turn("first task").await.unwrap();
        h.compact().await.unwrap();
        h.turn("second task").await.unwrap();
        h.compact().await.unwrap();
        assert!(is_v2(&h, 1) && is_v2(&h, 4), "v2 is tried every time");
        assert_eq!(warnings(&h), Vec::<String>::new());
        let events = h.analytics_events(4).await;
        assert!(
            events.iter().all(|event| !event
                .error
                .as_deref()
                .unwrap_or_default()
                .contains("does not support")),
            "{events:#?}"
        );
    }
}
