use serde_json::json;

use super::*;

const NOW: u64 = 1_795_290_870_000;
const A: &str = "3b7e4f01a2c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3";
const B: &str = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00";

#[test]
fn managing_a_device_asks_for_its_scopes_and_admin_for_other_roles() {
    assert!(to_manage(&["operator"], &[]).is_empty());
    assert_eq!(
        to_manage(&["operator"], &["operator.read", "operator.write"]),
        ["operator.read", "operator.write"]
    );
    assert_eq!(to_manage(&["node"], &[]), ["operator.admin"]);
    assert_eq!(
        to_manage(&["operator", "node"], &["operator.read"]),
        ["operator.read", "operator.admin"]
    );
}

#[test]
fn roles_and_token_scopes_are_read_from_either_field() {
    let d = json!({"role": "node", "roles": ["operator"], "scopes": ["operator.read"],
                   "tokens": [{"role": "node", "scopes": []},
                              {"role": "operator", "scopes": ["operator.write"]}]});
    assert_eq!(roles(&d), ["node", "operator"]);
    assert_eq!(roles(&json!({"role": "node", "roles": ["node"]})), ["node"]);
    assert_eq!(token_scopes(&d, "operator"), ["operator.write"]);
    assert!(token_scopes(&d, "node").is_empty());
    // No token for the role: the device's scopes.
    assert_eq!(
        token_scopes(&json!({"scopes": ["operator.read"]}), "operator"),
        ["operator.read"]
    );
}

#[test]
fn list_shows_pending_requests_and_paired_devices() {
    let listed = json!({
        "pending": [{"requestId": "6f1c2d9e-0000-4000-8000-000000000001", "deviceId": B,
                     "displayName": "laptop", "platform": "darwin", "role": "operator",
                     "scopes": ["operator.read", "operator.write"], "remoteIp": "10.0.0.5",
                     "ts": NOW - 120_000}],
        "paired": [
            {"deviceId": A, "displayName": "capnode", "platform": "linux", "role": "node",
             "roles": ["node"], "scopes": [], "approvedVia": "silent",
             "approvedAtMs": NOW - 3 * 3_600_000, "connected": true},
            {"deviceId": B, "clientId": "openclaw-control-ui", "roles": ["operator"],
             "scopes": ["operator.admin"], "approvedAtMs": NOW - 86_400_000, "connected": false},
        ],
    });
    let want = "\
Pending requests (1)
REQUEST   DEVICE        NAME    PLATFORM  ROLE      SCOPES                        FROM      AGE
6f1c2d9e  c0ffee00c0ff  laptop  darwin    operator  operator.read,operator.write  10.0.0.5  2m ago
Approve one with 'clawgate devices approve REQUEST'.

Paired devices (2)
DEVICE        NAME                 PLATFORM  ROLES     SCOPES          CONNECTED  APPROVED
3b7e4f01a2c9  capnode              linux     node      -               yes        silent, 3h ago
c0ffee00c0ff  openclaw-control-ui  -         operator  operator.admin  no         1d ago";
    assert_eq!(render_list(&listed, NOW), want);
    let none = json!({"pending": [], "paired": []});
    assert_eq!(
        render_list(&none, NOW),
        "Pending requests: none\n\nPaired devices: none"
    );
}

#[test]
fn results_say_what_changed() {
    let approve = DeviceAction::Approve {
        request: "6f".into(),
    };
    let sent = json!({"requestId": "6f1c"});
    let payload = json!({"requestId": "6f1c", "device": {"deviceId": A, "displayName": "laptop",
                         "role": "operator", "roles": ["operator"], "scopes": ["operator.read"]}});
    assert_eq!(
        render_result(&approve, &sent, &payload),
        format!("Approved request 6f1c: device {A} (laptop) paired with roles operator and scopes operator.read")
    );
    let reject = DeviceAction::Reject {
        request: "6f".into(),
    };
    let payload = json!({"requestId": "6f1c", "deviceId": A});
    assert_eq!(
        render_result(&reject, &sent, &payload),
        format!("Rejected request 6f1c of device {A}")
    );
    let remove = DeviceAction::Remove {
        device: "3b".into(),
    };
    let sent = json!({"deviceId": A});
    assert_eq!(
        render_result(&remove, &sent, &json!({})),
        format!("Removed device {A}")
    );
    let rotate = DeviceAction::Rotate {
        device: "3b".into(),
        role: "node".into(),
        scopes: None,
    };
    let withheld = json!({"deviceId": A, "role": "node", "scopes": [], "rotatedAtMs": NOW,
                          "tokenDelivery": "withheld-cross-device"});
    assert_eq!(
        render_result(&rotate, &sent, &withheld),
        format!("Rotated the node token of device {A} (scopes: -)\nThe new token is not shown here (withheld-cross-device).")
    );
    let in_band = json!({"deviceId": A, "role": "node", "scopes": ["x.y"], "token": "tok"});
    assert_eq!(
        render_result(&rotate, &sent, &in_band),
        format!("Rotated the node token of device {A} (scopes: x.y)\nNew token: tok")
    );
    let revoke = DeviceAction::Revoke {
        device: "3b".into(),
        role: "operator".into(),
    };
    assert_eq!(
        render_result(&revoke, &sent, &json!({"revokedAtMs": NOW})),
        format!("Revoked the operator token of device {A}")
    );
}
