# lib.sh: what the bench scripts share; they source it from the repository's root once $tmp
# (the run's temporary directory) is set.

# die prints why, with the end of every log of the run so far, and exits (the caller's EXIT
# trap cleans up).
die() {
  echo "$(basename "$0"): $*" >&2
  for log in "$tmp"/*.log "$tmp"/*/*.log; do [ -f "$log" ] && { echo "--- $log" >&2; tail -n 20 "$log" >&2; }; done
  exit 1
}

# free_port picks a random loopback port nothing answers on. A race with another process is
# possible but then the server fails to start and die says so.
used_ports=" "
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    [[ $used_ports == *" $p "* ]] && continue
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      used_ports+="$p "
      echo "$p"
      return
    fi
  done
}
