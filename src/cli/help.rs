//! The help texts: hand-written, one per command, wrapped at 79 columns.
//!
//! Kept apart from the parser because they are prose that changes with the
//! man page, not with parsing rules; a test holds the two in step.

use super::{DeviceVerb, NodeVerb, Verb};

/// The help for `cmd` (one of `COMMANDS`), or the top-level help for `None`
/// or any other name.
pub fn help_text(cmd: Option<&str>) -> String {
    let parts: &[&str] = match cmd {
        Some("run") => &[HELP_RUN],
        Some("call") => &[HELP_CALL, HELP_CLIENT],
        Some("health") => &[HELP_HEALTH, HELP_CLIENT],
        Some("status") => &[HELP_STATUS, HELP_CLIENT],
        Some("probe") => &[HELP_PROBE, HELP_CLIENT],
        Some("logs") => &[HELP_LOGS, HELP_CLIENT],
        Some("devices") => &[HELP_DEVICES, HELP_CLIENT],
        Some("nodes") => &[HELP_NODES, HELP_CLIENT],
        Some("install") => &[HELP_INSTALL],
        Some("uninstall") => &[HELP_UNINSTALL, HELP_SERVICE],
        Some("start") => &[HELP_START, HELP_SERVICE],
        Some("stop") => &[HELP_STOP, HELP_SERVICE],
        Some("restart") => &[HELP_RESTART, HELP_SERVICE],
        _ => &[HELP_TOP],
    };
    parts.concat()
}

const HELP_TOP: &str = concat!(
    "clawgate ",
    env!("CARGO_PKG_VERSION"),
    ": a small, static OpenClaw-compatible gateway

Usage: clawgate [COMMAND] [OPTIONS]
       clawgate gateway [COMMAND] [OPTIONS]

Commands:
  run        Start the gateway in the foreground (the default command)
  call       Call one gateway method and print the result
  health     Ask a running gateway for its health
  status     Show the service, the gateway reached and whether it answers
  probe      Connect, try the basic methods and report what works
  logs       Print the gateway's log file, or follow it
  devices    List, approve or remove paired devices; rotate their tokens
  nodes      List, approve, describe and invoke the gateway's nodes
  install    Install clawgate as a systemd or procd service and start it
  uninstall  Stop and remove the service, keeping its config and state
  start      Start the installed service
  stop       Stop the installed service
  restart    Restart the installed service
  help       Print the help of a command

Options:
  -h, --help     Print help; after a command, that command's help
  -V, --version  Print the version

'clawgate gateway COMMAND' is the same as 'clawgate COMMAND', so scripts
written for 'openclaw gateway' keep working. Run 'clawgate COMMAND --help'
for the options of a command.

See 'man clawgate' for configuration, environment, files and exit status.
"
);

const HELP_RUN: &str = "\
clawgate run: start the gateway in the foreground

Usage: clawgate [run] [OPTIONS]

One port serves the OpenClaw gateway WebSocket protocol and HTTP health
checks. By default it listens on 127.0.0.1:18789 only.

Options:
      --port N              Port to listen on, 0 for any free port
                            (default 18789, or 19001 with --dev)
      --bind MODE           loopback, lan, tailnet, auto or custom
                            (default loopback)
      --bind-host ADDR      IP address to listen on; implies --bind custom
      --auth MODE           token, password or none (default token, or
                            password when only a password is set)
      --token T             Token clients must send (default: generated
                            on a loopback bind, kept in the state dir)
      --password P          Password clients must send
      --config PATH         Config file (default <state dir>/clawgate.json)
      --state-dir PATH      State directory (default ~/.clawgate)
      --allow-unconfigured  Start without gateway.mode \"local\" in the config
      --dev                 Dev instance: port 19001, state in ~/.clawgate-dev
      --reset               With --dev: delete the dev state before starting
      --profile NAME        Named instance with state in ~/.clawgate-NAME
      --force               Stop a gateway already using the port first
  -v, --verbose             Log at debug level
      --json                Write log lines as JSON
  -h, --help                Print this help

Environment (flags win over these, these over the config file):
  CLAWGATE_GATEWAY_PORT      Port
  CLAWGATE_CONFIG_PATH       Config file
  CLAWGATE_STATE_DIR         State directory
  CLAWGATE_GATEWAY_TOKEN     Token
  CLAWGATE_GATEWAY_PASSWORD  Password
  CLAWGATE_LOG_LEVEL         Log level: error, warn, info, debug, trace
Each OPENCLAW_* name (OPENCLAW_GATEWAY_PORT, ...) is read when the
CLAWGATE_* one is unset.
";

const HELP_CALL: &str = "\
clawgate call: call one gateway method and print the result

Usage: clawgate call METHOD [OPTIONS]

Options:
      --params JSON     Parameters of the method, as a JSON value
      --expect-final    Wait for the final response of a two-stage method
                        such as 'agent'
";

const HELP_HEALTH: &str = "\
clawgate health: ask a running gateway for its health

Usage: clawgate health [OPTIONS]

Options:
";

const HELP_STATUS: &str = "\
clawgate status: show the service, the gateway reached and if it answers

Usage: clawgate status [OPTIONS]

Shows the installed service as its manager sees it (enabled, active, PID,
restarts), the config, state directory and address the client commands
use, and connects to the gateway there. When the service runs but the
gateway does not answer, the last warning or error of its log is shown.
A config file that does not load is reported, and the gateway is probed
all the same. Exits 1 when the gateway does not answer.

Options:
      --no-probe        Do not connect: only show the service, the address
                        and where the credential comes from
";

const HELP_PROBE: &str = "\
clawgate probe: try the basic methods of a gateway and report what works

Usage: clawgate probe [OPTIONS]

Connects and calls health, status, system-presence and config.get.

Options:
";

const HELP_LOGS: &str = "\
clawgate logs: print the gateway's log file, or follow it

Usage: clawgate logs [OPTIONS]

Reads the log through the gateway (method logs.tail), so the gateway must
write a log file: \"logging\": {\"file\": true} in its config. A service's
output is also in 'journalctl -u clawgate' (systemd) or 'logread -e
clawgate' (OpenWrt). With --json, each answer of logs.tail is printed as
one line of JSON.

Options:
      --follow          Keep printing new lines (checking every second)
                        until interrupted or the reader goes away (| head);
                        survives rotation and restarts
      --limit N         Start with the last N lines (default 200, at most
                        5000)
";

const HELP_INSTALL: &str = "\
clawgate install: install clawgate as a service and start it

Usage: clawgate install [OPTIONS]

Writes a systemd unit, or on OpenWrt a procd init script, that runs this
binary; writes a minimal config if there is none; then enables and starts
the service. Running it again changes nothing when nothing differs, and
files that differ are replaced only with --force.

Options:
      --system          A system service, started at boot, with a user of
                        its own (the default as root on a systemd host)
      --user            A service in your systemd user instance (the
                        default otherwise)
      --init NAME       systemd or procd (default: procd on OpenWrt,
                        otherwise systemd)
      --port N          The service's port, 1 to 65535, kept in its
                        config (default 18789)
      --token T         Token clients must send, kept in gateway.env
                        (mode 0600) beside the config; never printed
      --force           Replace files that differ from what would be
                        written (the config only to set --port)
      --json            Print the report as JSON
  -h, --help            Print this help

Files (CLAWGATE_ROOT, when set, is put in front of each):
  /etc/systemd/system/clawgate.service  system unit
  /etc/clawgate/clawgate.json           config of the system service
  /etc/clawgate/gateway.env             its token, with --token
  /etc/init.d/clawgate                  procd init script (OpenWrt)
A user service has ~/.config/systemd/user/clawgate.service,
~/.clawgate/clawgate.json and ~/.clawgate/gateway.env.
";

const HELP_UNINSTALL: &str = "\
clawgate uninstall: stop and remove the installed service

Usage: clawgate uninstall [OPTIONS]

Stops and disables the service and removes its unit file or init script.
The config, token file and state directory stay (the report lists them).
Without an installed service it says so and exits 0.
";

const HELP_START: &str = "\
clawgate start: start the installed service

Usage: clawgate start [OPTIONS]

Clears a failed state first (systemctl reset-failed), so a service that
gave up after repeated crashes starts again.
";

const HELP_STOP: &str = "\
clawgate stop: stop the installed service

Usage: clawgate stop [OPTIONS]
";

const HELP_RESTART: &str = "\
clawgate restart: restart the installed service, or start it

Usage: clawgate restart [OPTIONS]

Clears a failed state first, as start does.
";

/// The options of `uninstall`, `start`, `stop` and `restart`.
const HELP_SERVICE: &str = "
Options:
      --system          The system service (default: the one installed;
                        if both are, system as root and user otherwise)
      --user            The service in your systemd user instance
      --init NAME       systemd or procd (default: procd on OpenWrt)
      --json            Print the report as JSON
  -h, --help            Print this help

Each call to the service manager is bounded: one that takes more than 30
seconds is reported as a timeout instead of hanging.
";

/// The options every client command shares, after its own.
const HELP_CLIENT: &str = "      --url URL         Gateway to talk to, a ws:// URL (default: the
                        local gateway on 127.0.0.1); wss:// is not
                        supported yet
      --token T         Token to send (default: the local gateway's
                        configured or generated token)
      --password P      Password to send instead of a token
      --timeout MS      Give up after MS milliseconds (default 10000)
      --json            Print the JSON result only
  -h, --help            Print this help

Location of the local gateway, for its port and token:
      --config PATH     Config file (default <state dir>/clawgate.json)
      --state-dir PATH  State directory (default ~/.clawgate)
      --dev             The dev gateway: port 19001, ~/.clawgate-dev
      --profile NAME    The gateway of profile NAME: ~/.clawgate-NAME
      --port N          Its port, 1 to 65535 (default 18789, or 19001
                        with --dev)
";

/// The help of one action of `devices` or `nodes`: what it does, its own
/// options, then the client options.
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
    };
    let options = if text.contains("\nOptions:\n") {
        ""
    } else {
        "\nOptions:\n"
    };
    format!("{text}{options}{HELP_CLIENT}")
}

const HELP_DEVICES: &str = "\
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

const HELP_NODES: &str = "\
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
operator.pairing, plus operator.write for ordinary commands and
operator.admin for system.run, system.run.prepare or system.which.

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
(with --json, all of node.invoke's answer). Asks for operator.write, and
for operator.admin as well for system.run, system.run.prepare and
system.which.

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
