//! The help of `agent` and `sessions`, and of each `sessions` action.

use super::super::SessionVerb;

/// The text of one `sessions` action, before the client options.
pub(super) fn session_verb_text(verb: SessionVerb) -> &'static str {
    match verb {
        SessionVerb::List => HELP_SESSIONS_LIST,
        SessionVerb::History => HELP_SESSIONS_HISTORY,
        SessionVerb::Reset => HELP_SESSIONS_RESET,
        SessionVerb::Delete => HELP_SESSIONS_DELETE,
    }
}

pub(super) const HELP_AGENT: &str = "\
clawgate agent: send a message to an agent and print its reply

Usage: clawgate agent --message TEXT [OPTIONS]

Runs one agent turn on the gateway (method agent) and prints the reply as
it arrives, ending with a newline. The turn goes to the agent's main
session unless --session names another; a session keeps the
conversation, so the next message continues it. Exits 1 when the run
fails, is aborted or times out, with the gateway's reason on stderr.
Asks for operator.write, or operator.admin for a message that starts the
session over (/new, /reset). With --json, prints the final answer as
JSON when the run ends, instead of streaming the reply.

Examples:
  clawgate agent --message \"hello\"
  clawgate agent --session agent:main:notes --message \"remember: milk\"

Options:
      --message TEXT    The message to send (required)
      --agent ID        The agent to run (default: the gateway's default
                        agent)
      --session KEY     The session to run in (default: the agent's main
                        session, agent:<id>:main)
      --run-timeout S   How long the gateway lets the run take, in
                        seconds (default 600, 0 for no limit); without
                        --timeout, the client waits that long and 10000
                        ms more
      --idempotency-key K
                        Key that makes a retried message run once
                        (default: a new one for each call)
";

pub(super) const HELP_SESSIONS: &str = "\
clawgate sessions: list agent sessions, show a history, reset or delete

Usage: clawgate sessions ACTION [KEY] [OPTIONS]

A session is one conversation with an agent, named by its key:
agent:main:main is the main session of agent main, the one 'clawgate
agent' uses by default. The gateway keeps each session's transcript in
its state directory.

Actions:
  list                   Sessions: key, agent, last update, model, tokens
  history KEY            The messages of a session, oldest first
  reset KEY              Start a session over with an empty history
  delete KEY             Delete a session (and with --transcript, its
                         transcript)

Run 'clawgate sessions ACTION --help' for one action.

Examples:
  clawgate sessions list --agent main
  clawgate sessions history agent:main:main --limit 10
  clawgate sessions reset agent:main:main

Options:
      --agent ID        (list) Only the sessions of this agent
      --search S        (list) Only the sessions matching S
      --limit N         (list, history) At most N sessions, or the last N
                        messages (1 to 1000)
      --transcript      (delete) Delete the transcript too
";

const HELP_SESSIONS_LIST: &str = "\
clawgate sessions list: the agent sessions of a gateway

Usage: clawgate sessions list [OPTIONS]

Calls sessions.list and shows each session: its key, agent, how long ago
it was last updated (and whether a run is active), model, tokens used and
label. With --json, the answer as the gateway gave it.

Options:
      --agent ID        Only the sessions of this agent
      --search S        Only the sessions matching S
      --limit N         At most N sessions (1 to 1000; default: as many
                        as the gateway lists)
";

const HELP_SESSIONS_HISTORY: &str = "\
clawgate sessions history: the messages of one session

Usage: clawgate sessions history KEY [OPTIONS]

KEY is a session key as 'clawgate sessions list' shows it. Calls
chat.history and prints each message as a block: 'user:' or
'assistant:' on a line of its own, then its text. With --json, the answer
as the gateway gave it.

Example:
  clawgate sessions history agent:main:main --limit 10

Options:
      --limit N         Only the last N messages (1 to 1000; default: as
                        many as the gateway returns)
";

const HELP_SESSIONS_RESET: &str = "\
clawgate sessions reset: start a session over

Usage: clawgate sessions reset KEY [OPTIONS]

The key stays and gets a new session id with an empty history; the next
message to it starts a new conversation. Asks for operator.admin.
";

const HELP_SESSIONS_DELETE: &str = "\
clawgate sessions delete: delete a session

Usage: clawgate sessions delete KEY [OPTIONS]

Removes the session from the gateway's list; with --transcript its
transcript is deleted too (the gateway may keep an archived copy, which
the report names). Asks for operator.admin.

Options:
      --transcript      Delete the transcript too
";
