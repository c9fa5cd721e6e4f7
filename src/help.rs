//! The help texts: hand-written, one per command, wrapped at 79 columns.
//!
//! Kept apart from the parser because they are prose that changes with the
//! man page, not with parsing rules; a test holds the two in step.

/// The help for `cmd` (one of `COMMANDS`), or the top-level help for `None`
/// or any other name.
pub fn help_text(cmd: Option<&str>) -> String {
    let parts: &[&str] = match cmd {
        Some("run") => &[HELP_RUN],
        Some("call") => &[HELP_CALL, HELP_CLIENT],
        Some("health") => &[HELP_HEALTH, HELP_CLIENT],
        Some("status") => &[HELP_STATUS, HELP_CLIENT],
        Some("probe") => &[HELP_PROBE, HELP_CLIENT],
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
  run     Start the gateway in the foreground (the default command)
  call    Call one gateway method and print the result
  health  Ask a running gateway for its health
  status  Show which gateway the client commands reach and if it answers
  probe   Connect, try the basic methods and report what works
  help    Print the help of a command

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
clawgate status: show which gateway is reached and whether it answers

Usage: clawgate status [OPTIONS]

Options:
      --no-probe        Only show the address and where the credential
                        comes from; do not connect
";

const HELP_PROBE: &str = "\
clawgate probe: try the basic methods of a gateway and report what works

Usage: clawgate probe [OPTIONS]

Connects and calls health, status, system-presence and config.get.

Options:
";

/// The options every client command shares, after its own.
const HELP_CLIENT: &str =
    "      --url URL         Gateway to talk to, ws:// or wss:// (default: the
                        local gateway on 127.0.0.1)
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
      --port N          Its port (default 18789, or 19001 with --dev)
";
