# Step timing and background work for .ci/run and .ci/checks (sourced, not run).
#
#   step "what it does"      ends the step before (printing its time) and starts this one
#   end_step                 ends the current step
#   print_times              every step's time, then the total
#   in_background NAME CMD…  runs CMD with its output in $logs/NAME.log
#   wait_for NAME            waits for it; fails the run, printing its log, if it failed
#   stop_on_exit PID…        kills each PID and everything it started when the script
#                            exits, so that a failed run leaves nothing running
#
# The caller sets $logs (a directory under target/).

run_start=$SECONDS
step_name=""
step_start=$SECONDS
times=()

end_step() {
    [ -n "$step_name" ] || return 0
    local took=$((SECONDS - step_start))
    times+=("$(printf '%5d s  %s' "$took" "$step_name")")
    printf -- '--- %d s: %s\n' "$took" "$step_name"
    step_name=""
}

step() {
    end_step
    step_name="$*"
    step_start=$SECONDS
    printf '\n==> %s  (at %d s)\n' "$*" $((SECONDS - run_start))
}

print_times() {
    printf '%s\n' "${times[@]}"
    printf '%5d s  in all\n' $((SECONDS - run_start))
}

declare -A background
in_background() {
    local name=$1
    shift
    "$@" >"$logs/$name.log" 2>&1 &
    background[$name]=$!
}

wait_for() {
    local name=$1 started=$SECONDS
    if ! wait "${background[$name]}"; then
        echo "background step '$name' failed:"
        cat "$logs/$name.log"
        exit 1
    fi
    echo "($name: ready, waited $((SECONDS - started)) s)"
}

cleanup_pids=()
stop_on_exit() { cleanup_pids+=("$@"); }

# A process and every process under it, parents first (collected before any is killed,
# so that a dying parent cannot start another).
process_tree() {
    local child
    echo "$1"
    for child in $(cat /proc/"$1"/task/*/children 2>/dev/null); do process_tree "$child"; done
}

stop_all() {
    local pid tree=()
    for pid in "${cleanup_pids[@]}"; do
        kill -0 "$pid" 2>/dev/null || continue
        mapfile -t -O "${#tree[@]}" tree < <(process_tree "$pid")
    done
    [ ${#tree[@]} = 0 ] || kill "${tree[@]}" 2>/dev/null || true
}
trap stop_all EXIT
