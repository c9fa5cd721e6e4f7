//! The one-id params the pairing and node methods take: `{requestId}`,
//! `{deviceId}`, `{nodeId}`, each required and not blank. Other keys are
//! ignored, as the reference's schemas allow.

use serde::Deserialize;

use crate::protocol::{non_empty, Invalid, Params};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an object")]
pub struct RequestId {
    pub request_id: String,
}

impl Params for RequestId {
    fn check(&self) -> Result<(), Invalid> {
        non_empty("/requestId", &self.request_id)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an object")]
pub struct DeviceId {
    pub device_id: String,
}

impl Params for DeviceId {
    fn check(&self) -> Result<(), Invalid> {
        non_empty("/deviceId", &self.device_id)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an object")]
pub struct NodeId {
    pub node_id: String,
}

impl Params for NodeId {
    fn check(&self) -> Result<(), Invalid> {
        non_empty("/nodeId", &self.node_id)
    }
}
