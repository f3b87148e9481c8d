#!/usr/bin/env bash
# Builds the release addon for one target with zig as the C compiler and linker
# (cargo-zigbuild), into npm/<platform>/, where its package publishes it from.
# gnu targets link against glibc 2.17 (zig ships the old symbol versions), so the binary
# loads on RHEL 7+/Debian 8+/Ubuntu 14.04+, whatever glibc the build machine has. musl
# targets link musl dynamically (-crt-static: Rust's musl default is a static libc, which
# cannot make a cdylib Node can load).
# Needs: zig (pip install ziglang, or on PATH), cargo-zigbuild, the rustup target.
# Usage: scripts/build-target.sh <x86_64|aarch64>-unknown-linux-<gnu|musl>
set -euo pipefail
cd "$(dirname "$0")/.."
triple=${1:?usage: scripts/build-target.sh <rust target triple>}
GLIBC_FLOOR=${GLIBC_FLOOR:-2.17}
case "$triple" in
  x86_64-unknown-linux-gnu) platform=linux-x64-gnu ;;
  aarch64-unknown-linux-gnu) platform=linux-arm64-gnu ;;
  x86_64-unknown-linux-musl) platform=linux-x64-musl ;;
  aarch64-unknown-linux-musl) platform=linux-arm64-musl ;;
  *) echo "unsupported target $triple" >&2; exit 2 ;;
esac
if [[ $triple == *-gnu ]]; then
  zigtarget=$triple.$GLIBC_FLOOR
else
  zigtarget=$triple
  export "CARGO_TARGET_$(echo "${triple//-/_}" | tr a-z A-Z)_RUSTFLAGS=-C target-feature=-crt-static"
fi
cargo zigbuild --release --locked -p hyperiondb-client --target "$zigtarget"
cp "${CARGO_TARGET_DIR:-target}/$triple/release/libhyperiondb_client.so" "npm/$platform/hyperiondb-client.$platform.node"
echo "npm/$platform/hyperiondb-client.$platform.node"
