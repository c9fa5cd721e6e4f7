#!/bin/sh
# A stand-in for an agent CLI (such as `claude -p --output-format json`),
# run by clawgate's CLI backend in tests. POSIX sh only.
#
# The prompt is read from stdin (when stdin is not a terminal), else taken
# from the last argument. FAKE_CLI_MODE picks the behaviour:
#   reply  (default) print the reference's JSON result line; its session_id
#          is the argument after --session-id or --resume, else a fixed id
#   echo   the same line with the prompt as the result
#   fail   print "fake cli: model exploded" to stderr and exit 3
#   sleep  write our pid to $FAKE_CLI_PIDFILE, then sleep 60
# When FAKE_CLI_ARGV_LOG is set, the arguments (without the command) are
# appended to it as one space-separated line.

set -u

if [ -n "${FAKE_CLI_ARGV_LOG:-}" ]; then
    (IFS=' '; printf '%s\n' "$*") >>"$FAKE_CLI_ARGV_LOG"
fi

session=fake-session-1
last=
prev=
for arg in "$@"; do
    case $prev in
        --session-id | --resume) session=$arg ;;
    esac
    prev=$arg
    last=$arg
done

prompt=
if [ ! -t 0 ]; then
    prompt=$(cat)
fi
if [ -z "$prompt" ]; then
    prompt=$last
fi

# Prints $1 as the inside of a JSON string: backslash, quote, tab and
# carriage return escaped, lines joined with \n.
json_string() {
    cr=$(printf '\r')
    printf '%s\n' "$1" |
        sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/	/\\t/g' -e "s/$cr/\\\\r/g" |
        awk 'NR > 1 { printf "%s", "\\n" } { printf "%s", $0 }'
}

result_line() {
    printf '{"type":"result","subtype":"success","is_error":false,"result":"%s","session_id":"%s","usage":{"input_tokens":10,"output_tokens":5}}\n' \
        "$(json_string "$1")" "$(json_string "$session")"
}

case ${FAKE_CLI_MODE:-reply} in
    reply)
        result_line "Hello from the fake CLI."
        ;;
    echo)
        result_line "$prompt"
        ;;
    fail)
        echo "fake cli: model exploded" >&2
        exit 3
        ;;
    sleep)
        echo $$ >"${FAKE_CLI_PIDFILE:?FAKE_CLI_PIDFILE is not set}"
        sleep 60
        ;;
    *)
        echo "fake cli: unknown FAKE_CLI_MODE '$FAKE_CLI_MODE'" >&2
        exit 2
        ;;
esac
