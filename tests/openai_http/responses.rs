//! `/v1/responses` turns: the response object, and its named events in
//! order with rising sequence numbers.

use serde_json::{json, Value};

use super::{both, json_of, post, reply, sse, start};
use crate::util::fake_openai::{FakeOpenAi, PROMPT_TOKENS};

#[test]
fn responses_answer_whole_and_as_their_events_in_order() {
    let up = FakeOpenAi::start(reply(&["Hello", " there."]));
    let gw = start(&up, both(), json!({}));
    let body = json!({"model": "openclaw", "input": "hi", "instructions": "Be brief."});
    let (status, _, text) = post(&gw, "/v1/responses", &body, &[]);
    assert_eq!(status, 200, "{text}");
    let v = json_of(&text);
    assert!(v["id"].as_str().unwrap().starts_with("resp_"), "{v}");
    assert_eq!(
        (&v["object"], &v["status"], &v["model"]),
        (&json!("response"), &json!("completed"), &json!("openclaw"))
    );
    let item = &v["output"][0];
    assert!(item["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(
        (&item["type"], &item["role"], &item["status"]),
        (&json!("message"), &json!("assistant"), &json!("completed"))
    );
    assert_eq!(
        item["content"],
        json!([{"type": "output_text", "text": "Hello there.", "annotations": []}])
    );
    assert_eq!(
        v["usage"],
        json!({"input_tokens": PROMPT_TOKENS, "output_tokens": 2, "total_tokens": PROMPT_TOKENS + 2})
    );
    assert!(up.requests()[0]["messages"][0]["content"]
        .as_str()
        .unwrap()
        .ends_with("Be brief."));

    let body = json!({"input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}], "stream": true});
    let (status, headers, text) = post(&gw, "/v1/responses", &body, &[]);
    assert_eq!(status, 200, "{text}");
    assert_eq!(headers["content-type"], "text/event-stream; charset=utf-8");
    let events = sse(&text);
    assert_eq!(
        events.last().unwrap(),
        &(None, "[DONE]".to_string()),
        "{text}"
    );
    let named: Vec<(String, Value)> = events[..events.len() - 1]
        .iter()
        .map(|(n, d)| (n.clone().expect("a named event"), json_of(d)))
        .collect();
    let mut kinds: Vec<&str> = named.iter().map(|(n, _)| n.as_str()).collect();
    kinds.dedup();
    assert_eq!(
        kinds,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    for (i, (name, v)) in named.iter().enumerate() {
        assert_eq!(
            (v["type"].as_str(), v["sequence_number"].as_u64()),
            (Some(name.as_str()), Some(i as u64))
        );
    }
    let deltas: String = named
        .iter()
        .filter(|(n, _)| n == "response.output_text.delta")
        .map(|(_, v)| v["delta"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(deltas, "Hello there.");
    let done = &named[named.len() - 1].1["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output"][0]["content"][0]["text"], "Hello there.");
    assert_eq!(named[0].1["response"]["status"], "in_progress");
}
