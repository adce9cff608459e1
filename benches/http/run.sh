#!/usr/bin/env bash
# The HTTP benchmark matrix: every row (a wrk load shape) against every
# server (`http_server <name>`), one fresh server process per cell.
# README.md beside this file says what each row and server is.
#
#   benches/http/run.sh                      # everything, 10 s per cell
#   SECS=3 ROWS="plaintext-16 pipelined" SERVERS="spargio hyper limit" benches/http/run.sh
#
# Environment:
#   SECS            measured seconds per cell (default 10)
#   WARMUP          seconds of the same load before measuring, not counted (default 2; 0 skips)
#   ROWS            rows to run: names or substrings of names (default: all)
#   SERVERS         servers to run, exact names (default: spargio hyper axum-spargio axum-tokio limit;
#                   limit only runs the plaintext and pipelined rows)
#   PIPELINE_CONNS  connections of the pipelined row (default 256)
#   PIPELINE_DEPTH  requests per pipelined batch (default 16)
#   OPEN_RATE       requests per second the open-loop rows offer (default 12000, about half of
#                   what the servers manage on the closed-loop mix)
#   HOST, PORT      where servers listen: PORT is the first port, one more per cell (default 127.0.0.1, 18080)
#   OUT             the markdown report (default benches/http/results-<date>.md)
#   LOG_DIR         where server logs and raw wrk output go (default: a new temp dir, kept)
#   NO_BUILD=1      use the binary already built
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SECS=${SECS:-10}
WARMUP=${WARMUP:-2}
ROWS=${ROWS:-}
SERVERS=${SERVERS:-}
PIPELINE_CONNS=${PIPELINE_CONNS:-256}
PIPELINE_DEPTH=${PIPELINE_DEPTH:-16}
OPEN_RATE=${OPEN_RATE:-12000}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-18080}
OUT=${OUT:-$HERE/results-$(date +%F).md}
LOG_DIR=${LOG_DIR:-$(mktemp -d -t spargio-http-bench.XXXXXX)}
mkdir -p "$LOG_DIR"

ALL_ROWS="plaintext-16 plaintext-256 pipelined json-256 file-16 mix-64 mix-open-64 churn-64"
DEFAULT_SERVERS="spargio hyper axum-spargio axum-tokio limit"

# row -> connections, wrk script, script arguments, description.
row_conns() {
    case $1 in
    pipelined) echo "$PIPELINE_CONNS" ;;
    *) echo "${1##*-}" ;;
    esac
}
row_script() {
    case $1 in
    plaintext-*) echo plaintext.lua ;;
    pipelined) echo pipeline.lua ;;
    json-*) echo json.lua ;;
    file-*) echo file.lua ;;
    mix-open-*) echo "" ;; # http_load, not wrk
    mix-*) echo mix.lua ;;
    churn-*) echo churn.lua ;;
    esac
}
row_args() {
    case $1 in
    pipelined) echo "$PIPELINE_DEPTH" ;;
    *) echo "" ;;
    esac
}
row_desc() {
    local c
    c=$(row_conns "$1")
    case $1 in
    plaintext-*) echo "GET /plaintext, keep-alive, $c connections" ;;
    pipelined) echo "GET /plaintext pipelined $PIPELINE_DEPTH deep, $c connections" ;;
    json-*) echo "GET /json (serde_json per request), keep-alive, $c connections" ;;
    file-*) echo "GET /file (1 MiB static file), keep-alive, $c connections" ;;
    mix-open-*) echo "skewed mix, open loop: $OPEN_RATE req/s offered on a Poisson schedule (http_load), 1 in 16 GET /burn, latency from each request's due time, $c connections" ;;
    mix-*) echo "skewed mix: 1 in 16 requests GET /burn (~1 ms CPU), the rest /plaintext, $c connections" ;;
    churn-*) echo "connection churn: every 25th request 'Connection: close', $c connections" ;;
    esac
}
# The limit server answers every request with /plaintext bytes.
limit_runs() {
    case $1 in
    plaintext-* | pipelined) return 0 ;;
    *) return 1 ;;
    esac
}

selected_rows() {
    local r w
    for r in $ALL_ROWS; do
        if [ -z "$ROWS" ]; then
            echo "$r"
            continue
        fi
        for w in $ROWS; do
            if [[ $r == *"$w"* ]]; then
                echo "$r"
                break
            fi
        done
    done
}

# --- tools -------------------------------------------------------------------

if ! command -v wrk >/dev/null 2>&1; then
    echo "run.sh: installing wrk" >&2
    SUDO=""
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null 2>&1 || {
            echo "run.sh: wrk is missing and there is no sudo; install wrk" >&2
            exit 1
        }
        SUDO=sudo
    fi
    $SUDO apt-get install -y wrk >&2 || { $SUDO apt-get update >&2 && $SUDO apt-get install -y wrk >&2; }
fi

BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/http_server
LOAD_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/http_load
if [ "${NO_BUILD:-0}" != 1 ]; then
    (cd "$ROOT" && cargo build --release -p spargio-benches --bin http_server --bin http_load) >&2
fi
[ -x "$BIN" ] || {
    echo "run.sh: $BIN not built" >&2
    exit 1
}

ulimit -n 65536 2>/dev/null || true
CLK_TCK=$(getconf CLK_TCK)

FILE_DIR=$(mktemp -d -t spargio-http-files.XXXXXX)
head -c 1048576 /dev/urandom >"$FILE_DIR/file"

SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$FILE_DIR"
}
trap cleanup EXIT

# utime + stime of a process (all its threads), in clock ticks.
cpu_ticks() {
    local stat
    stat=$(<"/proc/$1/stat")
    stat=${stat##*) }
    # shellcheck disable=SC2086
    set -- $stat
    echo $((${12} + ${13}))
}

start_server() { # name port log
    BENCH_FILE_DIR=$FILE_DIR "$BIN" "$1" "$HOST:$2" >"$3" 2>&1 &
    SERVER_PID=$!
    local _
    for _ in $(seq 200); do
        grep -q '^ready' "$3" && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.05
    done
    echo "run.sh: $1 did not start (see $3)" >&2
    stop_server
    return 1
}

stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    local _
    for _ in $(seq 100); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.05
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

# The value of `name=` in wrk's RESULT line (report.lua).
result_field() { # line name
    local v
    v=$(sed -n "s/.* $2=\([0-9]*\).*/\1/p" <<<" $1")
    echo "${v:-0}"
}

# --- one cell ------------------------------------------------------------------

declare -A RPS P50 P99 CPU_US CPU_PCT ERRS
CELL=0

run_cell() { # row server
    local row=$1 server=$2 conns script args port log raw t0 t1 line
    conns=$(row_conns "$row")
    script=$(row_script "$row")
    args=$(row_args "$row")
    port=$((PORT + CELL))
    CELL=$((CELL + 1))
    log=$LOG_DIR/$row.$server.server.log
    raw=$LOG_DIR/$row.$server.wrk.txt
    echo "run.sh: $row / $server ($conns connections, ${SECS}s)" >&2
    start_server "$server" "$port" "$log" || return 0
    local url="http://$HOST:$port/"
    if [ -z "$script" ]; then
        # Open loop (http_load), warmed up by a run of its own as wrk is.
        if [ "$WARMUP" != 0 ]; then
            "$LOAD_BIN" "$HOST:$port" "$conns" "$OPEN_RATE" 0 "$WARMUP" /plaintext 16 /burn >/dev/null 2>&1 || true
        fi
        t0=$(cpu_ticks "$SERVER_PID")
        "$LOAD_BIN" "$HOST:$port" "$conns" "$OPEN_RATE" 0 "$SECS" /plaintext 16 /burn >"$raw" 2>&1 || true
        t1=$(cpu_ticks "$SERVER_PID")
    else
        # wrk runs from this directory so the scripts find report.lua.
        # shellcheck disable=SC2086
        if [ "$WARMUP" != 0 ]; then
            (cd "$HERE" && wrk -t1 -c"$conns" -d"${WARMUP}s" -s "$script" "$url" -- $args) >/dev/null 2>&1 || true
        fi
        t0=$(cpu_ticks "$SERVER_PID")
        # shellcheck disable=SC2086
        (cd "$HERE" && wrk -t1 -c"$conns" -d"${SECS}s" --latency -s "$script" "$url" -- $args) >"$raw" 2>&1 || true
        t1=$(cpu_ticks "$SERVER_PID")
    fi
    stop_server
    line=$(grep '^RESULT' "$raw" || true)
    if [ -z "$line" ]; then
        echo "run.sh: no result from wrk (see $raw)" >&2
        return 0
    fi
    local requests duration p50 p99 errors
    requests=$(result_field "$line" requests)
    duration=$(result_field "$line" duration_us)
    p50=$(result_field "$line" p50_us)
    p99=$(result_field "$line" p99_us)
    errors=$(($(result_field "$line" errors) + $(result_field "$line" non2xx)))
    local key="$row|$server"
    RPS[$key]=$(awk -v n="$requests" -v d="$duration" 'BEGIN { printf "%.0f", n / (d / 1e6) }')
    P50[$key]=$p50
    P99[$key]=$p99
    CPU_US[$key]=$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$requests" \
        'BEGIN { if (n > 0) printf "%.2f", t / hz * 1e6 / n; else print "-" }')
    CPU_PCT[$key]=$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v d="$duration" \
        'BEGIN { printf "%.0f", t / hz / (d / 1e6) * 100 }')
    ERRS[$key]=$errors
    echo "run.sh:   ${RPS[$key]} req/s, p50 ${p50} us, p99 ${p99} us, ${CPU_US[$key]} us CPU/req" >&2
}

# --- report ----------------------------------------------------------------------

fmt_us() {
    awk -v u="$1" 'BEGIN {
        # wrk prints a 0 percentile when its coordinated-omission
        # correction drops samples (pipelining): no figure.
        if (u == "" || u == 0) print "n/a";
        else if (u < 1000) printf "%d µs", u;
        else if (u < 1000000) printf "%.2f ms", u / 1000;
        else printf "%.2f s", u / 1e6 }'
}

ratio() { # a b: a / b, or - when either is missing
    if [ -z "${1:-}" ] || [ -z "${2:-}" ]; then
        echo "-"
        return
    fi
    awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else print "-" }'
}

times() { # a b: "×(a / b)", or n/a
    local r
    r=$(ratio "${1:-}" "${2:-}")
    if [ "$r" = - ]; then echo "n/a"; else echo "×$r"; fi
}

table() { # row servers...
    local row=$1 s key hkey
    shift
    hkey="$row|hyper"
    echo "### $row — $(row_desc "$row")"
    echo
    echo "| server | req/s | ÷ hyper | p50 | p99 | p99 ÷ hyper | CPU/req | server CPU | errors |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    for s in "$@"; do
        key="$row|$s"
        if [ -z "${RPS[$key]:-}" ]; then
            echo "| $s | failed | | | | | | | |"
            continue
        fi
        echo "| $s | ${RPS[$key]} | $(ratio "${RPS[$key]}" "${RPS[$hkey]:-}") |" \
            "$(fmt_us "${P50[$key]}") | $(fmt_us "${P99[$key]}") |" \
            "$(ratio "${P99[$key]}" "${P99[$hkey]:-}") | ${CPU_US[$key]} µs |" \
            "${CPU_PCT[$key]}% | ${ERRS[$key]} |"
    done
    echo
    local a b t
    a="$row|spargio" b="$row|axum-spargio" t="$row|axum-tokio"
    if [ -n "${RPS[$a]:-}" ] && [ -n "${RPS[$hkey]:-}" ]; then
        echo "spargio ÷ hyper: req/s $(times "${RPS[$a]}" "${RPS[$hkey]}"), p99 $(times "${P99[$a]}" "${P99[$hkey]}")."
    fi
    if [ -n "${RPS[$b]:-}" ] && [ -n "${RPS[$t]:-}" ]; then
        echo "axum-spargio ÷ axum-tokio: req/s $(times "${RPS[$b]}" "${RPS[$t]}")," \
            "p99 $(times "${P99[$b]}" "${P99[$t]}")."
    fi
    echo
}

# --- main ----------------------------------------------------------------------

declare -A ROW_SERVERS
for row in $(selected_rows); do
    list=""
    for s in ${SERVERS:-$DEFAULT_SERVERS}; do
        if [ "$s" = limit ] && ! limit_runs "$row"; then
            continue
        fi
        list="$list $s"
    done
    ROW_SERVERS[$row]=$list
    for s in $list; do
        run_cell "$row" "$s"
    done
done

REPORT=$LOG_DIR/report.md
{
    echo "# HTTP benchmarks, $(date '+%F %H:%M')"
    echo
    echo "- commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), $(uname -sr), $(nproc) cores"
    echo "- wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}'), \`-t1\`, ${SECS} s per cell after ${WARMUP} s of warm-up; one fresh server process per cell"
    echo "- every server runs 2 shards / 2 worker threads; spargio's adaptive and background placements also have a background pool (up to one thread per shard, at nice 5) that takes handlers with polls of 500 µs and more (\`/burn\`), where hyper and axum-tokio burn on their 2 workers at nice 0; **wrk runs on the same cores**, so every server shares its CPU with the load generator alike"
    echo "- open-loop rows (\`mix-open-*\`) are driven by \`http_load\` (one thread, like wrk): each connection sends on a Poisson schedule, ${OPEN_RATE} req/s over all, and a latency counts from the request's due time (no coordinated omission); their req/s is the offered rate met, not capacity"
    echo "- req/s and latency percentiles are wrk's (\`--latency\`); CPU/req is the server process's utime + stime over the measured run (from /proc, ${CLK_TCK} Hz ticks) divided by the requests; server CPU is that time over the run's wall time (200% = both cores)"
    echo "- ratios are against hyper: req/s above 1 is faster, p99 below 1 is better"
    echo
    for row in $(selected_rows); do
        # shellcheck disable=SC2086
        table "$row" ${ROW_SERVERS[$row]}
    done
} >"$REPORT"

cp "$REPORT" "$OUT"
cat "$REPORT"
echo "run.sh: report in $OUT; server logs and raw wrk output in $LOG_DIR" >&2
