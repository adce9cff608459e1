#!/usr/bin/env bash
# Runs each fuzz target (the HTTP/1.1 codec, the PROXY header parser) for $FUZZ_SECS seconds
# (default 120). Needs a nightly toolchain; installs cargo-fuzz if missing.
#
#   FUZZ_SECS=600 ./run.sh              # all targets
#   FUZZ_SECS=60 ./run.sh chunked       # one target
set -euo pipefail

cd "$(dirname "$0")"
FUZZ_SECS="${FUZZ_SECS:-120}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(request_head chunked proxy_header)
fi

for target in "${targets[@]}"; do
    echo "== fuzzing $target for ${FUZZ_SECS}s"
    dict="$PWD/dict/http.dict"
    if [ "$target" = proxy_header ]; then
        dict="$PWD/dict/proxy.dict"
    fi
    cargo +nightly fuzz run "$target" -- -max_total_time="$FUZZ_SECS" -dict="$dict"
done
