//! `models.list`: the models configured under `models.providers`.

use serde_json::{json, Value};

use super::Ctx;
use crate::protocol::{ErrorShape, Payload};

pub(super) fn models_list(c: &Ctx) -> Result<Payload, ErrorShape> {
    let models: Vec<Value> = c
        .live
        .settings
        .models
        .iter()
        .map(|m| {
            let mut v = json!({"id": m.id, "name": m.name, "provider": m.provider});
            if let Some(a) = &m.alias {
                v["alias"] = json!(a);
            }
            if let Some(c) = m.context_window {
                v["contextWindow"] = json!(c);
            }
            if let Some(r) = m.reasoning {
                v["reasoning"] = json!(r);
            }
            v
        })
        .collect();
    Ok(json!({ "models": models }).into())
}
