# Sourced by bench/run and bench/http/run: the telemetry cases' config edits.
#   with_telemetry CASE YAML
#   strait-metrics:   an admin server on a free port (request metrics are recorded only
#                     where /metrics can serve them)
#   strait-accesslog: the same, and an access log (default format) to a file in $WORK
with_telemetry() {
  case "$1" in
    strait-metrics|strait-accesslog)
      { echo 'admin: { address: "127.0.0.1:0" }'; cat "$2"; } >"$2.tmp" && mv "$2.tmp" "$2"
      ;;
  esac
  if [[ $1 == strait-accesslog ]]; then
    awk -v file="$WORK/access.log" '{ print } /^    route_config:/ { print "    access_log: { path: \"" file "\" }" }' "$2" >"$2.tmp"
    mv "$2.tmp" "$2"
  fi
}
