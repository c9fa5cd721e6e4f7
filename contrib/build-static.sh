#!/usr/bin/env bash
# build-static.sh TARGET: builds a fully static, stripped clawgate for a
# musl TARGET into target/static/<TARGET>/clawgate; with --no-tls, the
# variant without https:// model providers (cargo --no-default-features,
# no rustls and ring) into target/static/<TARGET>/clawgate-notls.
#
# How: Debian's rustc/cargo (/usr/bin, from the rustc-web packages) rebuild
# the standard library for TARGET from rust-web-src (RUSTC_BOOTSTRAP=1
# -Zbuild-std=std,panic_abort), and zig (from PyPI) links against its own
# musl through a small wrapper that this script writes into
# target/static-build/. The same zig compiles the C and assembly of ring
# (rustls's cryptography, under the default "tls" feature) through cc-rs's
# CC_/AR_/CFLAGS_<target> variables, for the same CPU baseline as the
# link; all five targets build with TLS, MIPS included (ring has no MIPS
# assembly and compiles its portable C there). Everything it builds stays
# under the repo's
# target/: the cargo target dir is target/static-build/cargo/TARGET (one
# per target, so that builds for different targets can run at the same
# time; the two variants of one target share it and take turns through a
# lock), zig's shared cache is target/static-build/zig-cache. It does not
# touch the host build (the release profile comes from Cargo.toml; strip
# and panic=abort are forced through CARGO_PROFILE_RELEASE_* for this
# invocation only) and it never installs anything: a missing prerequisite
# ends it with the command that installs it.
#
# Requirements:
#   /usr/bin/rustc, /usr/bin/cargo (>= 1.85) and the Rust sources:
#       apt-get install rustc-web cargo-web rust-web-src
#   zig, found through the python3 on PATH (absolute path of its module):
#       pip install ziglang
#   Downloading std's own dependencies (first build only) needs crates.io.
#
# Usage:
#   contrib/build-static.sh [--check] [--no-tls] TARGET
#   (--check: only check the prerequisites, build nothing; exit 0 if the
#   build could run, 1 with the reason and the install command if not;
#   --no-tls: build clawgate-notls, which refuses https:// providers)
#
#   contrib/build-static.sh x86_64-unknown-linux-musl
#   contrib/build-static.sh aarch64-unknown-linux-musl
#   contrib/build-static.sh armv7-unknown-linux-musleabihf
#   contrib/build-static.sh mipsel-unknown-linux-musl    (tier 3)
#   contrib/build-static.sh mips-unknown-linux-musl      (tier 3)
# Each build takes about 4 minutes on 2 cores (std and ring are compiled
# too), much of it on one core, so builds for several targets run well side
# by side; --no-tls after a build with TLS takes about 1.5 minutes more.
# contrib/test-static.sh builds them (in parallel) and runs each under
# qemu-user: static, architecture, /health, WebSocket calls, SIGTERM.
#
# MIPS builds use panic_immediate_abort (zig has no libunwind for MIPS, so
# the unwinding code would not link; up to Rust 1.91 it is
# -Zbuild-std-features=panic_immediate_abort, since 1.92 the profile setting
# panic = "immediate-abort" with -Zpanic-immediate-abort, chosen from the
# installed sources) and -C relocation-model=static (a static-PIE build
# crashed). With panic_immediate_abort a panic aborts the process SILENTLY,
# without the panic message or location. Other targets keep the normal
# panic message (and then abort, as the release profile says).
set -euo pipefail

die() {
    printf 'build-static.sh: %s\n' "$*" >&2
    exit 1
}

usage() {
    cat >&2 <<'EOF'
usage: contrib/build-static.sh [--check] [--no-tls] TARGET
--check: check the prerequisites only, build nothing
--no-tls: build target/static/TARGET/clawgate-notls, without https://
TARGET: x86_64-unknown-linux-musl, aarch64-unknown-linux-musl,
        armv7-unknown-linux-musleabihf, mipsel-unknown-linux-musl,
        mips-unknown-linux-musl
EOF
    exit 2
}

check_only=no
tls=yes
while [[ ${1-} == --* ]]; do
    case "$1" in
    --check) check_only=yes ;;
    --no-tls) tls=no ;;
    *) usage ;;
    esac
    shift
done
[[ $# -eq 1 ]] || usage
target=$1

# Per-target settings: zig's name for the same platform, and extras.
immediate_abort=no
extra_rustflags=""
# For the C that cc-rs compiles (ring): the CPU baseline, where zig's
# default for the platform is above it.
extra_cflags=""
case "$target" in
x86_64-unknown-linux-musl) zig_target=x86_64-linux-musl ;;
aarch64-unknown-linux-musl) zig_target=aarch64-linux-musl ;;
armv7-unknown-linux-musleabihf)
    zig_target=arm-linux-musleabihf
    # The armv7 baseline is ARMv7-A, Thumb-2, VFPv3-D16, no NEON: what
    # ARMv7 boards without NEON or with only 16 double registers (Cortex-A9
    # Marvell Armada 370/XP, Tegra 2, ...) have. Two things break it, each
    # with SIGILL on such CPUs:
    # - the rustc used here (1.96) enabled d32 for armv7 and used
    #   d16-d31 (readelf -A showed VFPv3, not VFPv3-D16): -C target-feature=-d32
    #   (rustc warns that d32 is an unstable feature; that is expected);
    # - zig's default ARM CPU has NEON and d32, and zig compiles musl and
    #   compiler-rt for it: the -mcpu link argument picks the baseline.
    extra_rustflags="-C target-feature=-d32 -C link-arg=-mcpu=generic+v7a+vfp3d16+thumb2-neon-d32"
    extra_cflags="-mcpu=generic+v7a+vfp3d16+thumb2-neon-d32"
    ;;
mipsel-unknown-linux-musl | mips-unknown-linux-musl)
    # Rust's mips*-musl targets are mips32r2 soft-float (OpenWrt's
    # mips_24kc); zig spells soft-float musl "musleabi".
    zig_target=${target%%-*}-linux-musleabi
    immediate_abort=yes
    extra_rustflags="-C relocation-model=static"
    ;;
-h | --help) usage ;;
*) die "unsupported TARGET '$target' (run with --help for the list)" ;;
esac

# ------------------------------------------------------------ prerequisites

rust_pkgs="apt-get install rustc-web cargo-web rust-web-src"
rustc=/usr/bin/rustc
cargo=/usr/bin/cargo
[[ -x $rustc ]] || die "$rustc not found; install it with: $rust_pkgs"
[[ -x $cargo ]] || die "$cargo not found; install it with: $rust_pkgs"
version=$("$rustc" --version) || die "$rustc does not run; reinstall it with: $rust_pkgs"
# "rustc 1.85.0 (...)": major.minor must be at least 1.85 (the MSRV).
minor=$(sed -n 's/^rustc 1\.\([0-9]*\)\..*/\1/p' <<<"$version")
[[ -n $minor && $minor -ge 85 ]] ||
    die "$rustc is '$version', older than 1.85; install the newer one with: $rust_pkgs"
sysroot=$("$rustc" --print sysroot)
[[ -f $sysroot/lib/rustlib/src/rust/library/Cargo.lock ]] ||
    die "the Rust sources ($sysroot/lib/rustlib/src/rust/library) are missing;" \
        "install them with: apt-get install rust-web-src"

command -v python3 >/dev/null || die "python3 not found; it is needed to find zig (pip install ziglang)"
zig_dir=$(python3 -c 'import ziglang, os; print(os.path.dirname(os.path.abspath(ziglang.__file__)))' \
    2>/dev/null) || die "zig not found (no ziglang module for $(command -v python3)); install it with: pip install ziglang"
zig=$zig_dir/zig
[[ -x $zig ]] || die "$zig is missing or not executable; reinstall it with: pip install ziglang"
"$zig" version >/dev/null 2>&1 || die "$zig does not run; reinstall it with: pip install ziglang"
[[ $check_only == no ]] || exit 0

# ----------------------------------------------------------------- the build

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[[ -f $repo/Cargo.toml ]] || die "no Cargo.toml in '$repo'"
build_dir=$repo/target/static-build
cargo_dir=$build_dir/cargo/$target
out_dir=$repo/target/static/$target
mkdir -p "$cargo_dir" "$out_dir"
# One build per target at a time: both variants write the same linker
# wrapper and target/<TARGET>/release/clawgate before it is copied out.
exec 9>"$cargo_dir.lock"
flock 9 || die "cannot lock $cargo_dir.lock"

# The linker and C compiler: zig cc for the musl target, minus what rustc
# or cc-rs passes for gcc (--target=..., -lgcc_s, -lgcc_eh) that zig does
# not know.
wrapper=$build_dir/zcc-$zig_target
zig_quoted="'${zig//\'/\'\\\'\'}'"
cat >"$wrapper.tmp" <<EOF
#!/bin/sh
# Generated by contrib/build-static.sh: zig cc as the $target linker
# and C compiler.
for a in "\$@"; do
    case "\$a" in --target=* | -lgcc_s | -lgcc_eh) ;; *) set -- "\$@" "\$a" ;; esac
    shift
done
exec $zig_quoted cc -target $zig_target "\$@"
EOF
chmod +x "$wrapper.tmp"
mv -f "$wrapper.tmp" "$wrapper"
# The archiver for cc-rs: zig's llvm-ar knows every target's objects.
# Written by builds for several targets at once, so through a file of
# this process's own.
archiver=$build_dir/zar
cat >"$archiver.$$.tmp" <<EOF
#!/bin/sh
# Generated by contrib/build-static.sh: zig ar as the archiver of C code.
exec $zig_quoted ar "\$@"
EOF
chmod +x "$archiver.$$.tmp"
mv -f "$archiver.$$.tmp" "$archiver"

triple_env=$(tr 'a-z-' 'A-Z_' <<<"$target")
cc_env=$(tr '-' '_' <<<"$target")
features=()
name=clawgate
if [[ $tls == no ]]; then
    features=(--no-default-features)
    name=clawgate-notls
fi
# panic_immediate_abort: a std feature up to Rust 1.91; since 1.92 a panic
# strategy (profile `panic = "immediate-abort"`, and std refuses the old
# feature). Which one applies is read from the sources that will be built.
panic=abort
# std without its "backtrace" feature: a panic still prints its message and
# location, but the DWARF symbolizer behind RUST_BACKTRACE (gimli, addr2line,
# miniz, about 120 KiB) is left out, and with panic=abort no unwind tables
# are needed (-C force-unwind-tables=no, another 160 KiB of .eh_frame).
# Measured on x86_64: 1,066,056 -> 769,600 bytes.
immediate_flags=(-Zbuild-std-features=)
if [[ $immediate_abort == yes ]]; then
    if grep -q 'is now a real panic strategy' "$sysroot/lib/rustlib/src/rust/library/core/src/panicking.rs"; then
        panic=immediate-abort
        immediate_flags=(-Zpanic-immediate-abort)
    else
        immediate_flags=(-Zbuild-std-features=panic_immediate_abort)
    fi
fi

printf 'build-static.sh: building %s (%s) with %s and zig %s (linker %s)\n' \
    "$target" "$name" "$version" "$("$zig" version)" "$wrapper" >&2
(
    cd "$repo"
    unset CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS CARGO_TARGET_DIR CARGO_BUILD_TARGET_DIR \
        RUSTC_WRAPPER RUSTC_WORKSPACE_WRAPPER RUSTUP_TOOLCHAIN
    export PATH="/usr/bin:$PATH"
    export RUSTC=$rustc
    export RUSTC_BOOTSTRAP=1
    export RUSTFLAGS="-C link-self-contained=no -C force-unwind-tables=no $extra_rustflags"
    export "CARGO_TARGET_${triple_env}_LINKER=$wrapper"
    export "CC_${cc_env}=$wrapper" "AR_${cc_env}=$archiver" "CFLAGS_${cc_env}=$extra_cflags"
    export CARGO_PROFILE_RELEASE_STRIP=symbols
    export CARGO_PROFILE_RELEASE_PANIC=$panic
    export ZIG_GLOBAL_CACHE_DIR=$build_dir/zig-cache
    export ZIG_LOCAL_CACHE_DIR=$build_dir/zig-cache
    exec "$cargo" build --release --bin clawgate "${features[@]}" \
        -Zbuild-std=std,panic_abort "${immediate_flags[@]}" \
        --target "$target" --target-dir "$cargo_dir"
) || die "cargo build for $target failed (see above)"

built=$cargo_dir/$target/release/clawgate
[[ -f $built ]] || die "the build did not produce $built"
out=$out_dir/$name
cp -f "$built" "$out.tmp"
mv -f "$out.tmp" "$out"
size=$(wc -c <"$out")
printf '%s\n%s bytes (%s KiB)\n' "$out" "$size" "$(((size + 1023) / 1024))"
