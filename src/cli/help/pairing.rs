//! The help of `devices` and `nodes`: the command's own, listing its
//! actions, and one for each action with its arguments and examples.
//! `verb_help` puts any action's help together, those of `sessions` too.

use super::super::{DeviceVerb, NodeVerb, Verb};

/// The help of one action of `devices`, `nodes` or `sessions`: what it
/// does, its own options, then the client options.
pub fn verb_help(verb: Verb) -> String {
    use {DeviceVerb as D, NodeVerb as N};
    let text = match verb {
        Verb::Device(D::List) => HELP_DEVICES_LIST,
        Verb::Device(D::Approve) => HELP_DEVICES_APPROVE,
        Verb::Device(D::Reject) => HELP_DEVICES_REJECT,
        Verb::Device(D::Remove) => HELP_DEVICES_REMOVE,
        Verb::Device(D::Rotate) => HELP_DEVICES_ROTATE,
        Verb::Device(D::Revoke) => HELP_DEVICES_REVOKE,
        Verb::Node(N::List) => HELP_NODES_LIST,
        Verb::Node(N::Pending) => HELP_NODES_PENDING,
        Verb::Node(N::Approve) => HELP_NODES_APPROVE,
        Verb::Node(N::Reject) => HELP_NODES_REJECT,
        Verb::Node(N::Remove) => HELP_NODES_REMOVE,
        Verb::Node(N::Describe) => HELP_NODES_DESCRIBE,
        Verb::Node(N::Invoke) => HELP_NODES_INVOKE,
        Verb::Session(v) => super::agent::session_verb_text(v),
    };
    let options = if text.contains("\nOptions:\n") {
        ""
    } else {
        "\nOptions:\n"
    };
    format!("{text}{options}{}", super::HELP_CLIENT)
}

pub(super) const HELP_DEVICES: &str = "\
clawgate devices: list, approve or remove paired devices; rotate tokens

Usage: clawgate devices ACTION [ID] [OPTIONS]

A device is a client with a key pair of its own (a node host, the Control
UI, the TUI). A local client with the gateway's secret is paired at once;
any other waits, refused with NOT_PAIRED, until its request is approved
here. A paired device gets a token of its own for each role.

Actions:
  list                   Pending requests and paired devices
  approve REQUEST        Approve a pending request
  reject REQUEST         Reject a pending request
  remove DEVICE          Forget a paired device and close its connections
  rotate DEVICE --role R [--scope S ...]
                         Issue the device a new token for role R
  revoke DEVICE --role R Revoke the device's token for role R

REQUEST and DEVICE may be cut to any unique prefix of the id as listed.
Run 'clawgate devices ACTION --help' for one action.

Examples:
  clawgate devices list
  clawgate devices approve 6f1c2d9e
  clawgate devices rotate 3b7e4f01 --role operator --scope operator.read

Options:
      --role R          (rotate, revoke) The role of the token: operator
                        or node
      --scope S         (rotate) A scope of the new token; repeat for
                        more (default: the scopes it has)
";

const HELP_DEVICES_LIST: &str = "\
clawgate devices list: pending device requests and paired devices

Usage: clawgate devices list [OPTIONS]

Calls device.pair.list. A pending request shows its request id (for
'clawgate devices approve'), the device, the role and scopes it asks for,
where it came from and how long ago. A paired device shows its roles and
scopes, whether it is connected and how and when it was approved. Token
values are never shown. With --json, the answer as the gateway gave it.
";

const HELP_DEVICES_APPROVE: &str = "\
clawgate devices approve: approve a pending device request

Usage: clawgate devices approve REQUEST [OPTIONS]

REQUEST is the request id shown by 'clawgate devices list', or a unique
prefix of it. The device is paired with the role and scopes it asked for
and may connect again at once. Asks the gateway for operator.pairing, and
also for the scopes the request asks for (operator.admin for a role other
than operator), as the gateway requires of whoever approves.

Example:
  clawgate devices approve 6f1c2d9e
";

const HELP_DEVICES_REJECT: &str = "\
clawgate devices reject: reject a pending device request

Usage: clawgate devices reject REQUEST [OPTIONS]

REQUEST is the request id shown by 'clawgate devices list', or a unique
prefix of it. The device stays unpaired; if it asks again, a new request
appears.
";

const HELP_DEVICES_REMOVE: &str = "\
clawgate devices remove: forget a paired device

Usage: clawgate devices remove DEVICE [OPTIONS]

DEVICE is the device id shown by 'clawgate devices list', or a unique
prefix of it. Its pairing and tokens are deleted and its connections
closed; to come back it must be paired again.
";

const HELP_DEVICES_ROTATE: &str = "\
clawgate devices rotate: issue a device a new token for one role

Usage: clawgate devices rotate DEVICE --role R [--scope S ...] [OPTIONS]

The old token stops working and the device's connections in that role
are closed. The new token is shown only to the device itself; this
command reports when it was rotated and with which scopes.

Example:
  clawgate devices rotate 3b7e4f01 --role operator --scope operator.read

Options:
      --role R          The role of the token: operator or node
      --scope S         A scope of the new token, within those the device
                        was approved for; repeat for more (default: the
                        scopes it has)
";

const HELP_DEVICES_REVOKE: &str = "\
clawgate devices revoke: revoke a device's token for one role

Usage: clawgate devices revoke DEVICE --role R [OPTIONS]

The token stops working and the device's connections in that role are
closed. The pairing stays; 'clawgate devices rotate' issues a new token.

Example:
  clawgate devices revoke 3b7e4f01 --role node

Options:
      --role R          The role of the token: operator or node
";

pub(super) const HELP_NODES: &str = "\
clawgate nodes: list, approve, describe and invoke the gateway's nodes

Usage: clawgate nodes ACTION [ID] [OPTIONS]

A node is a paired device that connects with role node (for example
'openclaw node run') and offers commands. What it offers is a second
approval: until 'clawgate nodes approve', none of its commands can be
invoked.

Actions:
  list                   Connected and paired nodes, approval state
  pending                Node command surfaces waiting for approval
  approve REQUEST        Approve a node's commands
  reject REQUEST         Reject a node's commands
  remove NODE            Drop a node's pairing and close its connection
  describe NODE          Show one node: platform, caps, commands
  invoke --node NODE --command C [--params JSON]
                         Run one command on a node and print its result

NODE is a node id, a display name or a unique id prefix; REQUEST a request
id or a unique prefix of it. Run 'clawgate nodes ACTION --help' for one
action.

Examples:
  clawgate nodes pending
  clawgate nodes approve 9a4e7c1b
  clawgate nodes invoke --node capnode --command system.which \\
      --params '{\"bins\":[\"sh\"]}'

Options:
      --node NODE       (invoke) The node to run the command on
      --command C       (invoke) The command, e.g. system.which
      --params JSON     (invoke) Its parameters, as a JSON value
      --invoke-timeout MS
                        (invoke) How long the gateway waits for the node
                        (default 30000)
      --idempotency-key K
                        (invoke) Key of the call (default: a new one)
";

const HELP_NODES_LIST: &str = "\
clawgate nodes list: connected and paired nodes, and their approval state

Usage: clawgate nodes list [OPTIONS]

Calls node.list and node.pair.list and shows each node once: id, name,
platform, whether it is connected, whether its commands are approved (or
the request waiting for approval) and how many it offers. With --json:
{pending, paired} from node.pair.list and nodes from node.list.
";

const HELP_NODES_PENDING: &str = "\
clawgate nodes pending: node command surfaces waiting for approval

Usage: clawgate nodes pending [OPTIONS]

Calls node.pair.list and shows each pending request: its id (for
'clawgate nodes approve'), the node, and the commands it declares.
";

const HELP_NODES_APPROVE: &str = "\
clawgate nodes approve: approve the commands a node declares

Usage: clawgate nodes approve REQUEST [OPTIONS]

REQUEST is the request id shown by 'clawgate nodes pending', or a unique
prefix of it. Asks for the scopes the request says approving it needs:
operator.pairing, plus operator.write for ordinary commands, or
operator.admin when the node declares one that runs programs
(system.run, system.which, ...) or reaches its files or browser.

Example:
  clawgate nodes approve 9a4e7c1b
";

const HELP_NODES_REJECT: &str = "\
clawgate nodes reject: reject the commands a node declares

Usage: clawgate nodes reject REQUEST [OPTIONS]

REQUEST is the request id shown by 'clawgate nodes pending', or a unique
prefix of it. The node stays connected with no commands approved.
";

const HELP_NODES_REMOVE: &str = "\
clawgate nodes remove: drop a node's pairing

Usage: clawgate nodes remove NODE [OPTIONS]

NODE is the node id shown by 'clawgate nodes list', or a unique prefix of
it. The device loses its node role and its node connection is closed.
";

const HELP_NODES_DESCRIBE: &str = "\
clawgate nodes describe: show one node

Usage: clawgate nodes describe NODE [OPTIONS]

NODE is a node id, a display name or a unique id prefix, looked up in
node.list. Shows what node.describe answers: platform, version, approval,
caps and commands (approved and pending).

Example:
  clawgate nodes describe capnode
";

const HELP_NODES_INVOKE: &str = "\
clawgate nodes invoke: run one command on a node and print its result

Usage: clawgate nodes invoke --node NODE --command C [OPTIONS]

NODE is a node id, a display name or a unique id prefix, looked up in
node.list first. The gateway relays the command to the node and waits
for its answer up to --invoke-timeout; its payload is printed as JSON
(with --json, all of node.invoke's answer). Asks for operator.write, or
operator.admin for system.run, system.run.prepare, fs.listDir,
terminal.upload and the browser proxy.

Example:
  clawgate nodes invoke --node capnode --command system.which \\
      --params '{\"bins\":[\"sh\"]}'

Options:
      --node NODE       The node to run the command on
      --command C       The command, one the node's approval covers
      --params JSON     Its parameters, as a JSON value
      --invoke-timeout MS
                        How long the gateway waits for the node, in
                        milliseconds (default 30000); without --timeout,
                        the client waits that long and 10000 more
      --idempotency-key K
                        Key that makes a retried call run once (default:
                        a new one for each call)
";
