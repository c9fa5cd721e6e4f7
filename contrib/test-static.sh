#!/usr/bin/env bash
# test-static.sh [OPTIONS] [TARGET...]: builds clawgate's static release
# binaries with contrib/build-static.sh and shows that each one works on
# its own architecture, under qemu-user.
#
# For each TARGET (default: all five that build-static.sh knows):
#   1. build it (contrib/build-static.sh TARGET; skipped with --no-build),
#      up to --jobs builds at a time: much of a build runs on one core, so
#      two side by side take little longer than one;
#   2. check the ELF file: fully static (no PT_INTERP program header, no
#      DT_NEEDED entry), the expected class, byte order and machine; for
#      MIPS the mips32r2 flag; for 32-bit ARM the build attributes
#      (`readelf -A`): Tag_CPU_arch v7, profile Application, Tag_FP_arch
#      VFPv3-D16 (or less) and no Advanced SIMD (NEON), so a binary sold as
#      armv7 is neither secretly v6 nor secretly a NEON/VFPv3-D32 one;
#   3. run `clawgate run --port 0 --allow-unconfigured` under
#      qemu-<arch>-static, emulating the smallest CPU the target promises
#      to run on (so an instruction the target's baseline does not have
#      dies with SIGILL here instead of on a router):
#        x86_64   -cpu qemu64      baseline x86-64: no SSE4, no AVX
#        aarch64  -cpu cortex-a53  ARMv8.0-A (Raspberry Pi 3, Zero 2 W)
#        armv7    -cpu cortex-r5f  ARMv7 with VFPv3-D16 and no NEON (qemu
#                                  has no such ARMv7-A model; user code
#                                  runs the same)
#        mips*    -cpu 24Kc        MIPS32r2 without FPU (OpenWrt mips_24kc)
#      (x86_64 runs natively when qemu-x86_64-static is missing.) With a
#      fresh state directory; read the port from its "listening on
#      ws://127.0.0.1:PORT" line and the token it generated from
#      <state dir>/gateway.token, then
#        - GET /health over HTTP must answer 200 with {"ok":true...},
#        - a WebSocket `health` call made by this machine's own clawgate
#          (--client, default target/release/clawgate) must answer ok,
#        - the same call made by the target binary itself (its client
#          side, under qemu too) must answer ok, and so must its `probe`
#          (health, status, system-presence, config.get, with timings),
#        - SIGTERM must stop it with exit status 0 within 5 seconds.
# Every step runs under `timeout -s KILL` (an emulated process that spins
# does not always act on SIGTERM). At the end a table lists each target's
# size, architecture and results, and the exit status says whether every
# target that was tested passed.
#
# Results: "ok"; "FAIL" (exit status 1); "skipped" when a prerequisite is
# missing (build toolchain or qemu-user), with the reason printed, which
# fails the run only with --strict.
#
# Big-endian MIPS under qemu-user: clawgate calls getifaddrs(3) once at
# startup (the LAN address of its own presence entry), and musl answers it
# from a netlink RTM_GETLINK dump. Recent kernels (6.18 here) end every
# link message with an empty nested attribute (IFLA_DPLL_PIN, 4 bytes);
# qemu-user's netlink translation (linux-user/fd-trans.c: the loop in
# host_to_target_for_each_rtattr runs `while (len > sizeof(struct
# rtattr))`) never byte-swaps a last attribute of exactly 4 bytes, so a
# big-endian guest reads its length as 1024 and steps past the message,
# and musl's RTA_OK (which only checks the room left) lets it walk on until
# it loops forever. A plain C getifaddrs program hangs the same way;
# little-endian guests are unaffected, and so is real big-endian hardware.
# So the big-endian MIPS gateway runs with socket(AF_NETLINK) refused
# (EAFNOSUPPORT) by a seccomp filter that python3 installs before it execs
# qemu: getifaddrs then fails at once, the gateway starts without a LAN
# address (as it would on a host without netlink), and everything else is
# tested as on the other targets. The table marks that row "ok (no
# netlink)". --mips-be-netlink runs it without the filter (to try a fixed
# qemu); without python3 or on a host other than x86_64/aarch64 the row is
# "not run", with the reason.
#
# Options:
#   --no-build         test the binaries already in target/static/TARGET/
#   --jobs N           run up to N builds at a time (default: the number of
#                      CPUs); with N > 1 each build's output goes to a log
#                      file, printed when that build fails
#   --client PATH      the host clawgate used as WebSocket client (default
#                      target/release/clawgate; `cargo build --release`)
#   --strict           a target skipped for a missing prerequisite fails
#   --mips-be-netlink  run big-endian MIPS without the netlink filter
#
# Needs: bash, coreutils (timeout), readelf and file (binutils, file),
# qemu-user-static, and what build-static.sh needs for the build.
set -euo pipefail

all_targets=(
    x86_64-unknown-linux-musl
    aarch64-unknown-linux-musl
    armv7-unknown-linux-musleabihf
    mipsel-unknown-linux-musl
    mips-unknown-linux-musl
)

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
    exit 2
}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=yes
jobs=$(nproc 2>/dev/null || echo 1)
strict=no
mips_be_netlink=no
client=$repo/target/release/clawgate
targets=()
while [[ $# -gt 0 ]]; do
    case "$1" in
    --no-build) build=no ;;
    --strict) strict=yes ;;
    --mips-be-netlink) mips_be_netlink=yes ;;
    --client)
        [[ $# -ge 2 ]] || usage
        client=$2
        shift
        ;;
    --jobs)
        [[ $# -ge 2 && $2 =~ ^[1-9][0-9]*$ ]] || usage
        jobs=$2
        shift
        ;;
    -h | --help) usage ;;
    -*) usage ;;
    all) targets+=("${all_targets[@]}") ;;
    *)
        [[ " ${all_targets[*]} " == *" $1 "* ]] || {
            printf 'test-static.sh: unknown TARGET %s (one of: %s)\n' "$1" "${all_targets[*]}" >&2
            exit 2
        }
        targets+=("$1")
        ;;
    esac
    shift
done
[[ ${#targets[@]} -gt 0 ]] || targets=("${all_targets[@]}")
[[ $jobs -le ${#targets[@]} ]] || jobs=${#targets[@]}

say() { printf 'test-static.sh: %s\n' "$*" >&2; }
# Wall-clock time in milliseconds, and the time since T0 as "12.3s".
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
since() { local d=$(($(now_ms) - $1)); printf '%d.%ds' $((d / 1000)) $((d % 1000 / 100)); }

for tool in readelf file timeout; do
    command -v "$tool" >/dev/null || {
        say "$tool not found; install it with: apt-get install binutils file coreutils"
        exit 1
    }
done
if [[ ! -x $client ]]; then
    say "no host client at $client (run 'cargo build --release' or pass --client):" \
        "the WebSocket check uses only each target's own client"
    client=
fi

# The gateway under test, if one is running: `timeout` makes itself a
# process group leader, so its group is killed on any exit.
server=
kill_server() {
    if [[ -n $server ]]; then
        kill -KILL -- "-$server" 2>/dev/null || kill -KILL "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
        server=
    fi
}
cleanup() {
    kill_server
    # Builds still running (interrupted): their process groups.
    local f
    for f in "$work"/build-*.pid; do
        [[ -f $f && ! -f ${f%.pid}.status ]] || continue
        kill -TERM -- "-$(cat "$f")" 2>/dev/null || true
    done
}
work=$(mktemp -d "${TMPDIR:-/tmp}/clawgate-static.XXXXXX")
trap 'cleanup; rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

host_arch=$(uname -m)
# An absolute path: the gateway runs with a scratch HOME, where a pyenv or
# similar shim might not find its interpreter.
python=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null) || python=

# `python3 -c "$nonetlink_py" COMMAND...` runs COMMAND with socket(AF_NETLINK)
# failing with EAFNOSUPPORT: a seccomp filter (classic BPF on the host's
# system call numbers, so x86_64 and aarch64 hosts only), then exec.
nonetlink_py='
import ctypes, os, struct, sys
hosts = {"x86_64": (0xC000003E, 41), "aarch64": (0xC00000B7, 198)}
arch, nr_socket = hosts.get(os.uname().machine, (None, None))
if arch is None:
    sys.exit("no seccomp filter for a " + os.uname().machine + " host")
def op(code, jt, jf, k):
    return struct.pack("=HBBI", code, jt, jf, k)
prog = b"".join([
    op(0x20, 0, 0, 4),                  # A = seccomp_data.arch
    op(0x15, 0, 5, arch),               # not this ABI: allow
    op(0x20, 0, 0, 0),                  # A = seccomp_data.nr
    op(0x15, 0, 3, nr_socket),          # not socket(2): allow
    op(0x20, 0, 0, 16),                 # A = low word of args[0], the family
    op(0x15, 0, 1, 16),                 # not AF_NETLINK: allow
    op(0x06, 0, 0, 0x00050000 | 97),    # SECCOMP_RET_ERRNO | EAFNOSUPPORT
    op(0x06, 0, 0, 0x7FFF0000),         # SECCOMP_RET_ALLOW
])
buf = ctypes.create_string_buffer(prog, len(prog))
class Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
fprog = Fprog(len(prog) // 8, ctypes.addressof(buf))
libc = ctypes.CDLL(None, use_errno=True)
# PR_SET_NO_NEW_PRIVS, then PR_SET_SECCOMP with SECCOMP_MODE_FILTER.
ul = ctypes.c_ulong
if (libc.prctl(38, ul(1), ul(0), ul(0), ul(0))
        or libc.prctl(22, ul(2), ctypes.byref(fprog), ul(0), ul(0))):
    sys.exit("seccomp: " + os.strerror(ctypes.get_errno()))
os.execvp(sys.argv[1], sys.argv[1:])
'

# The HTTP check without curl: bash's /dev/tcp, one request, whole answer.
http_get() { # PORT PATH
    # shellcheck disable=SC2016 # expanded by the inner bash
    timeout -s KILL 10 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n\r\n" "$2" "$1" >&3
        cat <&3' http_get "$1" "$2"
}

# The environment each clawgate runs in (the gateway's start spells it out
# again): nothing from the caller's CLAWGATE_*, OPENCLAW_* or NOTIFY_SOCKET
# settings, and HOME in the scratch directory.
clean_env() { # HOME COMMAND...
    local home=$1
    shift
    env -i PATH="$PATH" HOME="$home" LC_ALL=C "$@"
}

# A WebSocket client command (`call health` or `probe`) against
# 127.0.0.1:PORT, run by CLAWGATE... (a clawgate, possibly under qemu): it
# must exit 0 and print a top-level "ok": true.
ws_check() { # TARGET LABEL HOME PORT TOKEN "CLIENT-COMMAND" CLAWGATE...
    local target=$1 label=$2 home=$3 port=$4 token=$5 out
    local -a what
    read -ra what <<<"$6"
    shift 6
    if out=$(clean_env "$home" timeout -s KILL 30 "$@" "${what[@]}" \
        --url "ws://127.0.0.1:$port" --token "$token" --json --timeout 20000 2>&1) &&
        grep -q '^  "ok": true' <<<"$out"; then
        say "$target: clawgate ${what[*]} via $label: ok"
        return 0
    fi
    say "$target: clawgate ${what[*]} via $label failed: $(head -c 400 <<<"$out")"
    return 1
}

# One target; fills the row_* variables and returns 0 unless it failed.
test_target() {
    local target=$1
    row_bytes=- row_arch=- row_build=- row_cpu=- row_run=- row_http=- row_ws_host=- row_ws_self=- row_probe=-
    row_stop=-
    row_result=
    local class data machine qemu_arch qemu_cpu
    case "$target" in
    x86_64-unknown-linux-musl)
        class=ELF64 data=little machine='Advanced Micro Devices X86-64' qemu_arch=x86_64 qemu_cpu=qemu64
        ;;
    aarch64-unknown-linux-musl)
        class=ELF64 data=little machine=AArch64 qemu_arch=aarch64 qemu_cpu=cortex-a53
        ;;
    armv7-unknown-linux-musleabihf)
        class=ELF32 data=little machine=ARM qemu_arch=arm qemu_cpu=cortex-r5f
        ;;
    mipsel-unknown-linux-musl)
        class=ELF32 data=little machine='MIPS R3000' qemu_arch=mipsel qemu_cpu=24Kc
        ;;
    mips-unknown-linux-musl)
        class=ELF32 data=big machine='MIPS R3000' qemu_arch=mips qemu_cpu=24Kc
        ;;
    esac
    local bin=$repo/target/static/$target/clawgate

    # ------------------------------------------------------ the build's result
    if [[ $build == yes ]]; then
        local status rest
        read -r status rest <"$work/build-$target.status"
        case "$status" in
        skip)
            say "$target: SKIPPED, the build toolchain is missing: $rest"
            row_result=skipped
            return 0
            ;;
        0) row_build=$rest ;;
        *)
            say "$target: FAIL, the build failed (exit status $status)"
            row_result=FAIL
            return 1
            ;;
        esac
    elif [[ ! -f $bin ]]; then
        say "$target: SKIPPED, --no-build and no $bin"
        row_result=skipped
        return 0
    fi
    row_bytes=$(stat -c %s "$bin")

    # ------------------------------------------------------------ the ELF
    local header fail=
    header=$(readelf -h "$bin")
    say "$target: $(file -b "$bin")"
    grep -q "Class: *$class\$" <<<"$header" || fail+=" not $class;"
    grep -q "Data: .*$data endian" <<<"$header" || fail+=" not $data-endian;"
    grep -q "Machine: *$machine\$" <<<"$header" || fail+=" machine is not '$machine';"
    if readelf -lW "$bin" | grep -q 'INTERP'; then fail+=" has a PT_INTERP (dynamic loader);"; fi
    if readelf -dW "$bin" | grep -q '(NEEDED)'; then fail+=" needs shared libraries;"; fi
    case "$qemu_arch" in
    arm)
        local attrs cpu profile fp simd
        attrs=$(readelf -A "$bin")
        cpu=$(sed -n 's/^ *Tag_CPU_arch: *//p' <<<"$attrs")
        profile=$(sed -n 's/^ *Tag_CPU_arch_profile: *//p' <<<"$attrs")
        fp=$(sed -n 's/^ *Tag_FP_arch: *//p' <<<"$attrs")
        simd=$(sed -n 's/^ *Tag_Advanced_SIMD_arch: *//p' <<<"$attrs")
        say "$target: readelf -A: Tag_CPU_arch: ${cpu:-none}, Tag_CPU_arch_profile: ${profile:-none}," \
            "Tag_FP_arch: ${fp:-none}, Tag_Advanced_SIMD_arch: ${simd:-none}"
        [[ $cpu == v7 ]] || fail+=" Tag_CPU_arch is '${cpu:-missing}', not v7;"
        [[ $profile == Application ]] || fail+=" Tag_CPU_arch_profile is '${profile:-missing}', not Application;"
        [[ $fp == VFPv3-D16 || $fp == VFPv2 ]] || fail+=" Tag_FP_arch is '${fp:-missing}', not VFPv3-D16;"
        [[ -z $simd ]] || fail+=" needs Advanced SIMD ($simd);"
        row_arch="ARM ${cpu:-?}${profile:+-${profile:0:1}}${fp:+ $fp}${simd:+ $simd}"
        ;;
    mips | mipsel)
        local flags fpabi
        flags=$(sed -n 's/^ *Flags: *//p' <<<"$header")
        fpabi=$(readelf -A "$bin" | sed -n 's/^ *FP ABI: *//p' | head -n 1)
        grep -q 'mips32r2' <<<"$flags" || fail+=" not mips32r2 ($flags);"
        fpabi=${fpabi,,}
        row_arch="MIPS32r2 $data-endian ${fpabi// /-}"
        say "$target: readelf -h flags: $flags; FP ABI: ${fpabi:-?}"
        ;;
    aarch64) row_arch="AArch64 (ELF64)" ;;
    x86_64) row_arch="x86-64 (ELF64)" ;;
    esac
    if [[ -n $fail ]]; then
        say "$target: FAIL, the binary:$fail"
        row_result=FAIL
        return 1
    fi

    # ---------------------------------------------------------- the run
    local -a runner=()
    local q
    for q in "qemu-$qemu_arch-static" "qemu-$qemu_arch"; do
        command -v "$q" >/dev/null && runner=("$(command -v "$q")" -cpu "$qemu_cpu") && break
    done
    if [[ ${#runner[@]} -eq 0 && $qemu_arch == "$host_arch" ]]; then
        say "$target: qemu-$qemu_arch-static not found: run natively, on this machine's CPU" \
            "instead of the $qemu_cpu baseline"
    elif [[ ${#runner[@]} -eq 0 ]]; then
        say "$target: SKIPPED (built and checked, not run): qemu-$qemu_arch-static not found;" \
            "install it with: apt-get install qemu-user-static"
        row_result=skipped
        return 0
    fi
    # The gateway's own command prefix: for big-endian MIPS, the seccomp
    # filter described at the top.
    local -a gateway_runner=("${runner[@]}")
    local note=
    if [[ $qemu_arch == mips && ${#runner[@]} -gt 0 && $mips_be_netlink == no ]]; then
        local why_not=
        if [[ -z $python ]]; then
            why_not="python3 not found (it installs the seccomp filter)"
        elif ! "$python" -c "$nonetlink_py" true 2>/dev/null; then
            why_not="the seccomp filter cannot be installed on this host ($host_arch): $("$python" -c "$nonetlink_py" true 2>&1 | tail -n 1)"
        fi
        if [[ -n $why_not ]]; then
            say "$target: NOT RUN (built and checked only): under qemu-user its getifaddrs(3) hangs" \
                "(qemu does not byte-swap a trailing empty netlink attribute for big-endian guests;" \
                "see the top of this script), and the workaround is not available: $why_not"
            row_http=n/a row_ws_host=n/a row_ws_self=n/a row_probe=n/a row_stop=n/a row_result="not run"
            return 0
        fi
        gateway_runner=("$python" -c "$nonetlink_py" "${runner[@]}")
        note=" (no netlink)"
        say "$target: the gateway runs with socket(AF_NETLINK) refused: qemu-user hangs a big-endian" \
            "guest's getifaddrs(3) (see the top of this script), so its LAN address is not looked up"
    fi

    local dir=$work/$target t_run
    t_run=$(now_ms)
    mkdir -p "$dir/home"
    if ! clean_env "$dir/home" timeout -s KILL 20 "${runner[@]}" "$bin" --version >"$dir/version" 2>&1; then
        say "$target: FAIL, '${runner[*]} clawgate --version' failed: $(head -c 400 "$dir/version")"
        row_result=FAIL
        return 1
    fi
    say "$target: runs as: ${runner[*]:-natively} $(cat "$dir/version")"
    row_cpu=${qemu_cpu:-native}
    [[ ${#runner[@]} -gt 0 ]] || row_cpu=native

    # The gateway: at most 120 s in all, then SIGKILL whatever is left.
    # A simple command, not a function, so that $! is the pid of `timeout`
    # itself (env execs it), which passes SIGTERM on.
    env -i PATH="$PATH" HOME="$dir/home" LC_ALL=C \
        timeout -s KILL 120 "${gateway_runner[@]}" "$bin" run --port 0 --bind loopback \
        --state-dir "$dir/state" --allow-unconfigured >"$dir/out" 2>"$dir/err" &
    local pid=$!
    server=$pid
    local port="" i
    for ((i = 0; i < 300; i++)); do
        port=$(sed -n 's|^listening on ws://127\.0\.0\.1:\([0-9]*\) .*|\1|p' "$dir/out")
        [[ -z $port ]] || break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if [[ -z $port ]]; then
        say "$target: FAIL, the gateway did not announce a port within 30 s; its output:"
        kill_server
        cat "$dir/out" "$dir/err" >&2
        row_result=FAIL
        return 1
    fi
    local token
    token=$(cat "$dir/state/gateway.token" 2>/dev/null) || true
    say "$target: listening on 127.0.0.1:$port"

    local answer
    answer=$(http_get "$port" /health | tr -d '\r') || true
    if head -n 1 <<<"$answer" | grep -q '^HTTP/1\.[01] 200' && grep -q '"ok":true' <<<"$answer"; then
        row_http=ok
    else
        row_http=FAIL fail+=" /health;"
        say "$target: GET /health answered: $(head -c 400 <<<"$answer")"
    fi
    say "$target: GET /health: $(tail -n 1 <<<"$answer" | head -c 200)"

    if [[ -z $token ]]; then
        row_ws_host=FAIL row_ws_self=FAIL row_probe=FAIL fail+=" no gateway.token;"
    else
        if [[ -z $client ]]; then
            row_ws_host=n/a
        elif ws_check "$target" "the host's clawgate" "$dir/home" "$port" "$token" "call health" \
            "$client"; then
            row_ws_host=ok
        else
            row_ws_host=FAIL fail+=" ws health (host client);"
        fi
        if ws_check "$target" "its own client" "$dir/home" "$port" "$token" "call health" \
            "${runner[@]}" "$bin"; then
            row_ws_self=ok
        else
            row_ws_self=FAIL fail+=" ws health (own client);"
        fi
        # probe: four methods and timings printed as floating point, which
        # runs more of the target's code (it found the d16-d31 use above).
        if ws_check "$target" "its own client" "$dir/home" "$port" "$token" probe \
            "${runner[@]}" "$bin"; then
            row_probe=ok
        else
            row_probe=FAIL fail+=" probe (own client);"
        fi
    fi

    # SIGTERM (timeout passes it on to qemu, qemu to the guest): exit 0
    # within 5 s.
    kill -TERM "$pid" 2>/dev/null || true
    local status=none
    for ((i = 0; i < 50; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            status=0
            wait "$pid" || status=$?
            break
        fi
        sleep 0.1
    done
    if [[ $status == 0 ]]; then
        row_stop=ok
    elif [[ $status == none ]]; then
        row_stop=FAIL fail+=" still running 5 s after SIGTERM;"
        kill_server
    else
        row_stop=FAIL fail+=" exit status $status after SIGTERM;"
    fi
    server=
    row_run=$(since "$t_run")
    if [[ -n $fail ]]; then
        say "$target: FAIL:$fail; the gateway's output:"
        cat "$dir/out" "$dir/err" >&2
        row_result=FAIL
        return 1
    fi
    row_result="ok$note"
}

# ------------------------------------------------------------- the builds
# One build: its status file says "skip REASON", or "STATUS TIME".
build_one() { # TARGET
    local target=$1 log=$work/build-$1.log why t0 rc=0
    if ! why=$("$repo/contrib/build-static.sh" --check "$target" 2>&1); then
        echo "skip ${why#build-static.sh: }" >"$work/build-$target.status"
        return 0
    fi
    t0=$(now_ms)
    # In a process group of its own (setsid), so that cleanup can stop the
    # whole build, cargo and rustc included.
    if [[ $jobs -eq 1 ]]; then
        setsid "$repo/contrib/build-static.sh" "$target" >&2 &
    else
        setsid "$repo/contrib/build-static.sh" "$target" >"$log" 2>&1 &
    fi
    echo "$!" >"$work/build-$target.pid"
    wait "$!" || rc=$?
    echo "$rc $(since "$t0")" >"$work/build-$target.status"
    if [[ $rc -ne 0 && $jobs -gt 1 ]]; then
        say "$target: the build failed; the end of its output:"
        tail -n 40 "$log" >&2
    fi
}
if [[ $build == yes ]]; then
    say "building ${#targets[@]} target(s), $jobs at a time"
    t_builds=$(now_ms)
    running=0
    for target in "${targets[@]}"; do
        if [[ $running -ge $jobs ]]; then
            wait -n || true
            running=$((running - 1))
        fi
        say "$target: building"
        build_one "$target" &
        running=$((running + 1))
    done
    wait || true
    for target in "${targets[@]}"; do
        say "$target: build: $(cat "$work/build-$target.status")"
    done
    say "builds done in $(since "$t_builds")"
fi

# ------------------------------------------------------------ the checks
rows=()
failed=0
skipped=0
row_format='%-31s %7s %6s %-10s %5s %-33s %-7s %-7s %-7s %-5s %-5s %s\n'
for target in "${targets[@]}"; do
    if ! test_target "$target"; then failed=$((failed + 1)); fi
    [[ $row_result != skipped ]] || skipped=$((skipped + 1))
    # shellcheck disable=SC2059 # the format is the constant above
    rows+=("$(printf "$row_format" "$target" "$row_bytes" "$row_build" "$row_cpu" "$row_run" "$row_arch" \
        "$row_http" "$row_ws_host" "$row_ws_self" "$row_probe" "$row_stop" "$row_result")")
done

echo
# shellcheck disable=SC2059
printf "$row_format" target bytes build 'qemu -cpu' run 'arch (readelf)' /health 'ws host' \
    'ws self' probe stop result
printf '%s\n' "${rows[@]}"
if [[ $failed -gt 0 ]]; then
    say "$failed target(s) failed"
    exit 1
fi
if [[ $skipped -gt 0 && $strict == yes ]]; then
    say "$skipped target(s) skipped and --strict given"
    exit 1
fi
