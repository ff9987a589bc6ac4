# Sourced by bench/run and bench/http/run: the telemetry cases' config edits.
#   with_telemetry CASE YAML
#   strait-metrics:    an admin server on a free port (request metrics are recorded only
#                      where /metrics can serve them)
#   strait-accesslog:  the same, and an access log (default format) to a file in $WORK
#   strait-tracing:    metrics, and tracing every request (sampling_ratio 1.0) to an OTLP
#                      receiver (tests/interop/tracing/otlp_receiver.py, on the load
#                      core, its output discarded)
#   strait-tracing-1pct: the same at sampling_ratio 0.01
#   strait-tracing-down: tracing every request to a collector whose port is closed
#                      (exports fail; answers and latency must not change)
# Needs $WORK, $LOAD_CPU and the PIDS array of the calling script.
OTLP_PORT=""
start_otlp_receiver() {
  [[ -n $OTLP_PORT ]] && return
  local root
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  mkfifo "$WORK/otlp.in"
  OTLP_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  PYTHONPATH="$root/tests/interop/pydeps" taskset -c "$LOAD_CPU" \
    python3 "$root/tests/interop/tracing/otlp_receiver.py" --port "$OTLP_PORT" --quiet >/dev/null 2>"$WORK/otlp.err" <>"$WORK/otlp.in" &
  PIDS+=($!)
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$OTLP_PORT") 2>/dev/null && return
    sleep 0.1
  done
  echo "bench: the OTLP receiver did not start: $(cat "$WORK/otlp.err")" >&2
  exit 1
}

with_telemetry() {
  case "$1" in
    strait-metrics|strait-accesslog|strait-tracing|strait-tracing-1pct|strait-tracing-down)
      { echo 'admin: { address: "127.0.0.1:0" }'; cat "$2"; } >"$2.tmp" && mv "$2.tmp" "$2"
      ;;
  esac
  case "$1" in
    strait-accesslog)
      awk -v file="$WORK/access.log" '{ print } /^    route_config:/ { print "    access_log: { path: \"" file "\" }" }' "$2" >"$2.tmp"
      mv "$2.tmp" "$2"
      ;;
    strait-tracing|strait-tracing-1pct)
      start_otlp_receiver
      local ratio=1.0
      [[ $1 == strait-tracing-1pct ]] && ratio=0.01
      echo "tracing: { provider: opentelemetry, endpoint: \"http://127.0.0.1:$OTLP_PORT\", sampling_ratio: $ratio }" >>"$2"
      ;;
    strait-tracing-down)
      local closed
      closed=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
      echo "tracing: { provider: opentelemetry, endpoint: \"http://127.0.0.1:$closed\", sampling_ratio: 1.0 }" >>"$2"
      ;;
  esac
}
