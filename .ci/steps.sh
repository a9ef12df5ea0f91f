# Step timing and background work for .ci/run, .ci/checks and .ci/fuzz (sourced, not run).
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
#
# A step's time is wall-clock seconds, then the CPU seconds (user + system) of the
# processes it ran and waited for: on two cores the CPU, not the wall clock, says what a
# step costs the run, since .ci/checks and .ci/fuzz fill what a step leaves idle.

# Sets $cpu to the CPU time (user + system, in hundredths of a second) of this shell's
# children that have ended and been waited for. It runs in this shell: in $(…) it would
# see a subshell's children.
children_cpu() {
    # `times` prints the shell's own times, then its children's: 0m12.345s 0m1.234s.
    times >"$logs/.times"
    cpu=$(python3 -c '
import re, sys
print(round(100 * sum(int(m) * 60 + float(s) for m, s in re.findall(r"(\d+)m([\d.]+)s", open(sys.argv[1]).read().splitlines()[1]))))' "$logs/.times")
}

run_start=$SECONDS
# What this process's children used before (a script exec'd by a shell that had run
# others, as `bash -c 'bash .ci/checks && bash .ci/fuzz'` does with the last one).
children_cpu
run_cpu=$cpu
step_name=""
step_start=$SECONDS
step_cpu=0
times=()

end_step() {
    [ -n "$step_name" ] || return 0
    local took=$((SECONDS - step_start)) cpu
    children_cpu
    cpu=$(((cpu - step_cpu + 50) / 100))
    times+=("$(printf '%5d s %5d cpu-s  %s' "$took" "$cpu" "$step_name")")
    printf -- '--- %d s, %d cpu-s: %s\n' "$took" "$cpu" "$step_name"
    step_name=""
}

step() {
    end_step
    step_name="$*"
    step_start=$SECONDS
    local cpu
    children_cpu
    step_cpu=$cpu
    printf '\n==> %s  (at %d s)\n' "$*" $((SECONDS - run_start))
}

print_times() {
    local cpu
    children_cpu
    printf '%s\n' "${times[@]}"
    printf '%5d s %5d cpu-s  in all\n' $((SECONDS - run_start)) $(((cpu - run_cpu + 50) / 100))
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
