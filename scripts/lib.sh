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

# tree_pids PID prints the process and its children, one a line: pgpool-II forks a process
# per client slot, so its cost is the tree's.
tree_pids() { echo "$1"; pgrep -P "$1" || true; }

# cpu_ticks_tree PID prints the user + system CPU time, in clock ticks (getconf CLK_TCK a
# second), that PID and its children have used so far (/proc/PID/stat fields 14 and 15).
cpu_ticks_tree() {
  local t=0 p v
  for p in $(tree_pids "$1"); do
    v=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null) || continue
    t=$((t + v))
  done
  echo "$t"
}

# count_syscalls PID OUT CMD... runs CMD while `strace -c -f` counts the system calls of PID
# and its children, and writes strace's summary to OUT. strace slows the traced process
# down a lot: count with it, time without it. Returns CMD's status.
count_syscalls() {
  local pid=$1 out=$2 st rc=0 p
  shift 2
  local args=()
  for p in $(tree_pids "$pid"); do args+=(-p "$p"); done
  strace -c -f -q -o "$out" "${args[@]}" 2>/dev/null &
  st=$!
  # Wait (at most 10 s) until strace has attached: the traced process shows a TracerPid.
  for _ in $(seq 100); do
    [ "$(awk '/^TracerPid:/ { print $2 }' "/proc/$pid/status")" = 0 ] || break
    sleep 0.1
  done
  "$@" || rc=$?
  kill -INT "$st" 2>/dev/null
  wait "$st" 2>/dev/null || true
  return "$rc"
}

# syscalls_per_txn OUT N prints the system calls per transaction in strace summary OUT for N
# transactions, then the five commonest with theirs: "4.1 (read 2.0, write 2.0, ...)".
syscalls_per_txn() {
  awk -v n="$2" '
    $NF == "total" { total = $4; next }
    $4 ~ /^[0-9]+$/ { calls[$NF] = $4 }
    END {
      if (n <= 0 || total == "") { print "n/a"; exit }
      printf "%.2f (", total / n
      k = 0
      while (k < 5) {
        best = ""; for (s in calls) if (best == "" || calls[s] > calls[best]) best = s
        if (best == "") break
        printf "%s%s %.2f", (k ? ", " : ""), best, calls[best] / n; delete calls[best]; k++
      }
      print ")"
    }' "$1"
}
