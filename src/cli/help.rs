//! The help texts: hand-written, one per command, wrapped at 79 columns.
//!
//! Kept apart from the parser because they are prose that changes with the
//! man page, not with parsing rules; a test holds the two in step.

mod agent;
mod pairing;

use agent::{HELP_AGENT, HELP_SESSIONS};
pub use pairing::verb_help;
use pairing::{HELP_DEVICES, HELP_NODES};

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
        Some("agent") => &[HELP_AGENT, HELP_CLIENT],
        Some("sessions") => &[HELP_SESSIONS, HELP_CLIENT],
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
  agent      Send a message to an agent and print its reply as it arrives
  sessions   List agent sessions, show one's history, reset or delete one
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
