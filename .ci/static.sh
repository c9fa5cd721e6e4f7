#!/usr/bin/env bash
# CI step: the static release binaries, built and run under qemu-user by
# contrib/test-static.sh, after installing what they need when it is
# missing:
#   - from Debian's archive: rustc-web cargo-web rust-web-src (rustc and
#     the standard library's sources, >= 1.85), qemu-user-static, binutils
#     (readelf), file;
#   - from PyPI: ziglang (zig, the musl linker), pinned below.
# If that cannot be installed (no registry, not root, no pip), the step
# prints why and is skipped with exit status 0. Once the tools are there, a
# binary that does not build, is not static, has the wrong architecture, or
# does not answer /health, a WebSocket health call and probe fails the step.
# Then (when x86_64 is among the targets) the x86_64 binary without TLS (build-static.sh --no-tls, about a
# minute more: std and the other crates are already built) is built and
# must print its version, and both x86_64 sizes are printed for the README.
#
# Environment:
#   CLAWGATE_CI_STATIC=0              skip the step (it says so)
#   CLAWGATE_CI_STATIC_TARGETS="..."  test these targets only (default: all
#                                     five: about 15 minutes on 2 cores when
#                                     nothing is built yet)
set -euo pipefail
cd "$(dirname "$0")/.."

# The zig the static builds were made and measured with.
zig_version=0.17.1
apt_packages=(rustc-web cargo-web rust-web-src qemu-user-static binutils file)
read -ra targets <<<"${CLAWGATE_CI_STATIC_TARGETS:-}"

skip() {
  echo "static builds SKIPPED: $*"
  exit 0
}

[[ ${CLAWGATE_CI_STATIC:-1} != 0 ]] || skip "CLAWGATE_CI_STATIC=0"
[[ $(uname -m) == x86_64 ]] || skip "this step expects an x86_64 host, not $(uname -m)"

# build-static.sh --check says what the build lacks: rustc and its sources
# are checked first, zig (the "ziglang" module) last.
check() { contrib/build-static.sh --check x86_64-unknown-linux-musl 2>&1; }
needs_apt() {
  local out tool
  if ! out=$(check) && ! grep -q ziglang <<<"$out"; then return 0; fi
  for tool in qemu-aarch64-static qemu-arm-static qemu-mipsel-static qemu-mips-static readelf file; do
    command -v "$tool" >/dev/null || return 0
  done
  return 1
}

t0=$SECONDS
if needs_apt; then
  echo "installing from Debian's archive: ${apt_packages[*]}"
  sudo=()
  if [[ $(id -u) != 0 ]]; then
    { command -v sudo >/dev/null && sudo -n true 2>/dev/null; } ||
      skip "not root and no sudo, so apt-get cannot install ${apt_packages[*]}"
    sudo=(sudo -n)
  fi
  log=$(mktemp)
  install=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive timeout 900
    apt-get install -y -q --no-install-recommends "${apt_packages[@]}")
  # The package lists as they are first; refreshed only if that fails (an
  # old list can name files the archive no longer has).
  if ! "${install[@]}" >"$log" 2>&1; then
    "${sudo[@]}" timeout 300 apt-get update -q >>"$log" 2>&1 ||
      { tail -n 5 "$log"; skip "apt-get update failed (is Debian's archive reachable?)"; }
    "${install[@]}" >>"$log" 2>&1 ||
      { tail -n 5 "$log"; skip "apt-get install ${apt_packages[*]} failed"; }
  fi
  rm -f "$log"
  ! needs_apt || skip "still missing after apt-get install: $(check)"
fi
if ! check >/dev/null; then
  command -v python3 >/dev/null || skip "python3 not found, so zig cannot be installed (pip install ziglang)"
  echo "installing zig from PyPI: ziglang==$zig_version for $(command -v python3)"
  # PIP_ROOT_USER_ACTION: no warning about root (older pips ignore it).
  PIP_ROOT_USER_ACTION=ignore timeout 600 python3 -m pip install -q --disable-pip-version-check \
    "ziglang==$zig_version" ||
    skip "pip install ziglang==$zig_version failed (PyPI unreachable, no pip, or an externally" \
      "managed python3: put a virtualenv's python3 first on PATH)"
  check >/dev/null || skip "the build toolchain is still incomplete: $(check)"
fi
zig=$(python3 -c 'import ziglang, os; print(os.path.join(os.path.dirname(ziglang.__file__), "zig"))')
echo "toolchain ready after $((SECONDS - t0))s: $(/usr/bin/rustc --version); zig $("$zig" version);" \
  "$(qemu-mips-static --version | head -n 1)"

client=target/release/clawgate
[[ -x $client ]] || cargo build --release
status=0
contrib/test-static.sh --strict --client "$client" "${targets[@]}" || status=$?

x86=x86_64-unknown-linux-musl
if [[ ${#targets[@]} -gt 0 && " ${targets[*]} " != *" $x86 "* ]]; then
  echo "static build without TLS skipped: $x86 is not among CLAWGATE_CI_STATIC_TARGETS"
  exit "$status"
fi
if ! contrib/build-static.sh --no-tls "$x86"; then
  echo "static build without TLS FAILED for $x86"
  exit 1
fi
notls=target/static/$x86/clawgate-notls
timeout -s KILL 20 "$notls" --version || { echo "$notls --version FAILED"; exit 1; }
for bin in "target/static/$x86/clawgate" "$notls"; do
  [[ -f $bin ]] && printf '%-56s %9s bytes\n' "$bin" "$(stat -c %s "$bin")"
done
exit "$status"
