//! The request reading of the OpenAI-compatible endpoints: models to
//! agents, conversations folded into one turn, and what is refused.

use super::models::percent_decode;
use super::wire::{chat_turn, model_agent, responses_turn, session_header, session_key};

fn chat(body: &str) -> Result<super::wire::Turn, String> {
    chat_turn(body.as_bytes())
}

#[test]
fn models_name_the_default_agent_or_one_by_id() {
    assert_eq!(model_agent("openclaw"), Some(None));
    assert_eq!(model_agent("openclaw/default"), Some(None));
    for m in ["openclaw/ops", "openclaw:ops", "agent:ops"] {
        assert_eq!(model_agent(m), Some(Some("ops".into())), "{m}");
    }
    for bad in [
        "gpt-4o",
        "openclaw/",
        "openclaw/a/b",
        "agent:a:b",
        "agent: x",
        "",
    ] {
        assert_eq!(model_agent(bad), None, "{bad}");
    }
}

#[test]
fn a_single_user_message_is_the_turn_and_system_messages_the_prompt() {
    let t = chat(
        r#"{"model":"openclaw/ops","stream":true,"stream_options":{"include_usage":true},"user":" u1 ",
            "messages":[{"role":"system","content":"Be brief."},{"role":"developer","content":"No lists."},
                        {"role":"user","content":[{"type":"text","text":"Hi"},{"type":"text","text":"there"}]}]}"#,
    )
    .unwrap();
    assert_eq!(t.model, "openclaw/ops");
    assert_eq!(t.agent.as_deref(), Some("ops"));
    assert_eq!(t.message, "Hi\nthere");
    assert_eq!(t.system.as_deref(), Some("Be brief.\n\nNo lists."));
    assert!(t.stream && t.include_usage);
    assert_eq!(t.user.as_deref(), Some("u1"));
    let t = chat(r#"{"messages":[{"role":"user","content":"x"}]}"#).unwrap();
    assert_eq!(
        (t.model.as_str(), t.agent, t.stream),
        ("openclaw", None, false)
    );
}

#[test]
fn earlier_messages_are_context_above_the_last_user_message() {
    let t = chat(
        r#"{"model":"openclaw","messages":[{"role":"user","content":"one"},
            {"role":"assistant","content":"two"},{"role":"user","content":"three"},
            {"role":"assistant","content":"prefill"}]}"#,
    )
    .unwrap();
    assert_eq!(
        t.message,
        "[Chat messages since your last reply - for context]\nUser: one\nAssistant: two\n\n\
         [Current message - respond to this]\nUser: three"
    );
}

#[test]
fn tools_images_and_bad_shapes_are_refused_with_a_reason() {
    let cases = [
        (
            r#"{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function"}]}"#,
            "tools",
        ),
        (
            r#"{"messages":[{"role":"user","content":"x"}],"tool_choice":"auto"}"#,
            "tool_choice",
        ),
        (
            r#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}"#,
            "image_url",
        ),
        (
            r#"{"messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"1"}]},{"role":"user","content":"x"}]}"#,
            "tool_calls",
        ),
        (
            r#"{"messages":[{"role":"tool","content":"r"},{"role":"user","content":"x"}]}"#,
            "tool",
        ),
        (
            r#"{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}"#,
            "Invalid `model`",
        ),
        (
            r#"{"messages":[{"role":"system","content":"only"}]}"#,
            "Missing user message",
        ),
        (
            r#"{"messages":[{"role":"user","content":"  "}]}"#,
            "Missing user message",
        ),
        (r#"{"messages":"hi"}"#, "messages"),
        (r#"[1]"#, "JSON object"),
        (r#"{"#, "not valid JSON"),
        (
            r#"{"messages":[{"role":"user","content":"x"}],"stream":"yes"}"#,
            "stream",
        ),
    ];
    for (body, want) in cases {
        let e = chat(body).expect_err(body);
        assert!(e.contains(want), "{body}: {e}");
    }
    assert!(chat(
        r#"{"messages":[{"role":"user","content":"x"}],"tools":[],"tool_choice":"none"}"#
    )
    .is_ok());
}

#[test]
fn responses_take_a_string_or_text_items_and_refuse_the_rest() {
    let t = responses_turn(br#"{"model":"openclaw","input":"hello","instructions":"Be kind."}"#)
        .unwrap();
    assert_eq!(
        (t.message.as_str(), t.system.as_deref()),
        ("hello", Some("Be kind."))
    );
    let t = responses_turn(
        br#"{"input":[{"role":"system","content":"S"},{"type":"message","role":"user","content":[{"type":"input_text","text":"a"}]},
            {"role":"assistant","content":[{"type":"output_text","text":"b"}]},{"role":"user","content":"c"}]}"#,
    )
    .unwrap();
    assert!(
        t.message
            .ends_with("User: a\nAssistant: b\n\n[Current message - respond to this]\nUser: c"),
        "{}",
        t.message
    );
    assert_eq!(t.system.as_deref(), Some("S"));
    for (body, want) in [
        (
            r#"{"input":"x","previous_response_id":"resp_1"}"#,
            "previous_response_id",
        ),
        (
            r#"{"input":[{"type":"function_call_output","call_id":"1","output":"x"}]}"#,
            "function_call_output",
        ),
        (
            r#"{"input":[{"role":"user","content":[{"type":"input_image","image_url":"x"}]}]}"#,
            "input_image",
        ),
        (
            r#"{"input":[{"type":"input_file","file_id":"f"}]}"#,
            "input_file",
        ),
        (r#"{"input":"x","tools":[{"type":"web_search"}]}"#, "tools"),
        (r#"{"input":7}"#, "input"),
    ] {
        let e = responses_turn(body.as_bytes()).expect_err(body);
        assert!(e.contains(want), "{body}: {e}");
    }
}

#[test]
fn session_keys_come_from_the_user_the_header_or_a_fresh_id() {
    assert_eq!(
        session_key("openai", "main", Some("bob"), "u"),
        "agent:main:openai-user:bob"
    );
    assert_eq!(
        session_key("openresponses", "ops", None, "u1"),
        "agent:ops:openresponses:u1"
    );
    assert_eq!(session_header(Some("  ")), Ok(None));
    assert_eq!(
        session_header(Some("agent:main:mine")),
        Ok(Some("agent:main:mine".into()))
    );
    for reserved in ["subagent:x", "cron:job", "ACP:1", "agent:main:cron:x"] {
        assert!(session_header(Some(reserved)).is_err(), "{reserved}");
    }
    assert!(session_header(Some(&"k".repeat(600))).is_err());
}

#[test]
fn model_ids_in_paths_are_percent_decoded_or_refused() {
    assert_eq!(
        percent_decode("openclaw%2Fdefault").as_deref(),
        Some("openclaw/default")
    );
    assert_eq!(percent_decode("openclaw"), Some("openclaw".into()));
    for bad in ["%2", "%zz", "%+1", "%ff"] {
        assert_eq!(percent_decode(bad), None, "{bad}");
    }
}
