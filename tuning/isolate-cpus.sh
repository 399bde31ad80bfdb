#!/usr/bin/env bash
# isolate-cpus.sh: keep everything but the collector off the given CPUs, at run
# time (no reboot). Run as root on the collector host:
#
#   tuning/isolate-cpus.sh --dry-run 2-3    # show what would change
#   tuning/isolate-cpus.sh 2-3              # do it
#
# CPULIST is the kernel's format (`2-5,8`) and should equal engine.cores.
# It:
#   1. moves IRQ affinities (/proc/irq/*/smp_affinity_list) off CPULIST onto
#      the other online CPUs, and sets /proc/irq/default_smp_affinity and the
#      unbound-workqueue mask to the other CPUs;
#   2. moves every user thread whose affinity overlaps CPULIST off it with
#      `taskset`. Threads pinned entirely inside CPULIST (the collector's
#      executors, if it is already running) are left alone; kernel threads are
#      skipped; failures (exited threads, PF_NO_SETAFFINITY) are counted;
#   3. sets the `performance` cpufreq governor on CPULIST where cpufreq exists;
#   4. prints a summary.
#
# None of this survives a reboot, and irqbalance undoes step 1: ban the CPUs
# there (IRQBALANCE_BANNED_CPULIST=2-3 in /etc/default/irqbalance or
# /etc/sysconfig/irqbalance). For isolation from boot on, use the kernel
# parameters (example for CPUs 2-3, in /etc/default/grub):
#
#   GRUB_CMDLINE_LINUX="... isolcpus=nohz,domain,managed_irq,2-3 nohz_full=2-3 rcu_nocbs=2-3"
#   then: update-grub (Debian/Ubuntu) or grub2-mkconfig -o /boot/grub2/grub.cfg; reboot
#
#   isolcpus=   the scheduler never places other tasks on these CPUs
#               (`managed_irq` also keeps managed device IRQs off them);
#   nohz_full=  no scheduler tick while a single task runs there;
#   rcu_nocbs=  RCU callbacks run on the housekeeping CPUs instead.
#
# Check the result with `marketprism tune check --config <your config>`.

set -euo pipefail

usage() {
    echo "usage: $0 [--dry-run] CPULIST    (e.g. $0 --dry-run 2-3)" >&2
    exit 2
}

DRY_RUN=0
CPULIST=""
for arg in "$@"; do
    case "$arg" in
        --dry-run | -n) DRY_RUN=1 ;;
        -h | --help) sed -n '2,35p' "$0"; exit 0 ;;
        -*) echo "unknown option: $arg" >&2; usage ;;
        *)
            [[ -z "$CPULIST" ]] || usage
            CPULIST="$arg"
            ;;
    esac
done
[[ -n "$CPULIST" ]] || usage

SYS_CPU=/sys/devices/system/cpu

# expand_cpulist "0-3,8" -> "0 1 2 3 8" (sorted, unique); fails on bad syntax.
expand_cpulist() {
    local list="$1" part lo hi i
    local -a out=() parts=()
    list="${list//[[:space:]]/}"
    [[ -n "$list" && "$list" != "(null)" ]] || return 0
    IFS=',' read -r -a parts <<<"$list"
    for part in "${parts[@]}"; do
        if [[ "$part" =~ ^([0-9]+)-([0-9]+)$ ]]; then
            lo=$((10#${BASH_REMATCH[1]})) hi=$((10#${BASH_REMATCH[2]}))
            ((lo <= hi)) || { echo "bad CPU range: $part" >&2; return 1; }
            for ((i = lo; i <= hi; i++)); do out+=("$i"); done
        elif [[ "$part" =~ ^[0-9]+$ ]]; then
            out+=("$((10#$part))")
        else
            echo "bad CPU list entry: '$part' in '$1'" >&2
            return 1
        fi
    done
    printf '%s\n' "${out[@]}" | sort -n -u | tr '\n' ' '
}

# join_cpus 0 1 2 5 -> "0-2,5"
join_cpus() {
    local out="" start="" prev="" c
    for c in "$@"; do
        if [[ -z "$start" ]]; then
            start=$c prev=$c
        elif ((c == prev + 1)); then
            prev=$c
        else
            out+="${out:+,}$start$([[ $start == "$prev" ]] || echo "-$prev")"
            start=$c prev=$c
        fi
    done
    [[ -z "$start" ]] || out+="${out:+,}$start$([[ $start == "$prev" ]] || echo "-$prev")"
    echo "$out"
}

# hex_mask 0 1 5 -> "23"; more than 32 CPUs -> comma-separated 32-bit words,
# the format of /proc/irq/default_smp_affinity and workqueue cpumask.
hex_mask() {
    local max=0 c w words=() word
    for c in "$@"; do ((c > max)) && max=$c; done
    local nwords=$((max / 32 + 1))
    for ((w = nwords - 1; w >= 0; w--)); do
        word=0
        for c in "$@"; do
            ((c / 32 == w)) && word=$((word | (1 << (c % 32))))
        done
        if ((w == nwords - 1)); then
            words+=("$(printf '%x' "$word")")
        else
            words+=("$(printf '%08x' "$word")")
        fi
    done
    (IFS=','; echo "${words[*]}")
}

# in_set CPU "list of cpus" -> 0 if CPU is in the space-separated list.
in_set() { [[ " $2 " == *" $1 "* ]]; }

# subtract "a b c" "b" -> "a c"
subtract() {
    local c out=()
    for c in $1; do in_set "$c" "$2" || out+=("$c"); done
    echo "${out[*]:-}"
}

# do_write VALUE FILE: write (or, with --dry-run, say what would be written).
do_write() {
    if ((DRY_RUN)); then
        echo "  would write '$1' to $2"
        return 0
    fi
    # A subshell so a failed redirect is a return code, not an exit.
    (echo "$1" >"$2") 2>/dev/null
}

ISOLATE=$(expand_cpulist "$CPULIST") || usage
ONLINE=$(expand_cpulist "$(cat "$SYS_CPU/online")")
for c in $ISOLATE; do
    in_set "$c" "$ONLINE" || { echo "CPU $c is not online (online: $(join_cpus $ONLINE))" >&2; exit 1; }
done
HOUSEKEEPING=$(subtract "$ONLINE" "$ISOLATE")
if [[ -z "$HOUSEKEEPING" ]]; then
    echo "refusing: isolating $(join_cpus $ISOLATE) would leave no CPU for the rest of the system" >&2
    exit 1
fi
# shellcheck disable=SC2086  # word splitting of CPU lists is intended
ISO_LIST=$(join_cpus $ISOLATE)
# shellcheck disable=SC2086
HK_LIST=$(join_cpus $HOUSEKEEPING)
# shellcheck disable=SC2086
HK_MASK=$(hex_mask $HOUSEKEEPING)

if ((!DRY_RUN)) && ((EUID != 0)); then
    echo "must run as root (or use --dry-run to preview)" >&2
    exit 1
fi
((DRY_RUN)) && echo "dry run: nothing is changed"
echo "isolating CPUs $ISO_LIST; housekeeping CPUs $HK_LIST (mask $HK_MASK)"

# --- 1. IRQs ----------------------------------------------------------------
irq_moved=0 irq_skipped=0 irq_failed=0
echo "IRQs:"
for f in /proc/irq/*/smp_affinity_list; do
    [[ -e "$f" ]] || continue
    irq=${f#/proc/irq/}
    irq=${irq%%/*}
    cur_list=$(cat "$f" 2>/dev/null) || { irq_failed=$((irq_failed + 1)); continue; }
    cur=$(expand_cpulist "$cur_list" 2>/dev/null) || { irq_failed=$((irq_failed + 1)); continue; }
    overlap=0
    for c in $cur; do in_set "$c" "$ISOLATE" && overlap=1 && break; done
    if ((!overlap)); then
        irq_skipped=$((irq_skipped + 1))
        continue
    fi
    rest=$(subtract "$cur" "$ISOLATE")
    # shellcheck disable=SC2086
    new=$(join_cpus ${rest:-$HOUSEKEEPING})
    if ((DRY_RUN)); then
        echo "  would move irq $irq: $cur_list -> $new"
        irq_moved=$((irq_moved + 1))
    elif do_write "$new" "$f"; then
        irq_moved=$((irq_moved + 1))
    else
        # Per-CPU and some managed IRQs cannot be moved (EIO): expected.
        echo "  irq $irq: cannot move ($cur_list), left as is"
        irq_failed=$((irq_failed + 1))
    fi
done
if [[ -w /proc/irq/default_smp_affinity ]] || ((DRY_RUN)); then
    do_write "$HK_MASK" /proc/irq/default_smp_affinity ||
        echo "  cannot set /proc/irq/default_smp_affinity"
fi
WQ=/sys/devices/virtual/workqueue/cpumask
if [[ -e "$WQ" ]]; then
    echo "unbound workqueues:"
    do_write "$HK_MASK" "$WQ" || echo "  cannot set $WQ"
fi

# --- 2. threads ---------------------------------------------------------------
PF_KTHREAD=$((0x00200000))
th_moved=0 th_pinned=0 th_kernel=0 th_failed=0 th_clear=0
echo "threads:"
for task in /proc/[0-9]*/task/[0-9]*; do
    tid=${task##*/}
    stat=$(cat "$task/stat" 2>/dev/null) || continue # exited
    comm=${stat#*(}
    comm=${comm%)*}
    # Fields after the last ')': state ppid pgrp session tty_nr tpgid flags ...
    read -r -a fields <<<"${stat##*) }"
    flags=${fields[6]:-0}
    if (((flags & PF_KTHREAD) != 0)); then
        th_kernel=$((th_kernel + 1))
        continue
    fi
    cur_list=$(taskset -c -p "$tid" 2>/dev/null) || continue # exited
    cur_list=${cur_list##*: }
    cur=$(expand_cpulist "$cur_list" 2>/dev/null) || { th_failed=$((th_failed + 1)); continue; }
    rest=$(subtract "$cur" "$ISOLATE")
    if [[ "$rest" == "$cur" ]]; then
        th_clear=$((th_clear + 1))
        continue
    fi
    if [[ -z "$rest" ]]; then
        # Pinned only to isolated CPUs on purpose (e.g. the collector's executors).
        echo "  keep tid $tid ($comm): pinned to $cur_list"
        th_pinned=$((th_pinned + 1))
        continue
    fi
    # shellcheck disable=SC2086
    new=$(join_cpus $rest)
    if ((DRY_RUN)); then
        echo "  would move tid $tid ($comm): $cur_list -> $new"
        th_moved=$((th_moved + 1))
    elif taskset -c -p "$new" "$tid" >/dev/null 2>&1; then
        th_moved=$((th_moved + 1))
    else
        th_failed=$((th_failed + 1))
    fi
done

# --- 3. governor --------------------------------------------------------------
gov_set=0 gov_missing=0 gov_failed=0
echo "cpufreq governor:"
for c in $ISOLATE; do
    g="$SYS_CPU/cpu$c/cpufreq/scaling_governor"
    if [[ ! -e "$g" ]]; then
        echo "  cpu$c: no cpufreq (VM or BIOS-controlled), skipped"
        gov_missing=$((gov_missing + 1))
        continue
    fi
    avail=$(cat "$SYS_CPU/cpu$c/cpufreq/scaling_available_governors" 2>/dev/null || echo performance)
    if ! in_set performance "$avail"; then
        echo "  cpu$c: no performance governor (available: $avail)"
        gov_failed=$((gov_failed + 1))
        continue
    fi
    if do_write performance "$g"; then
        gov_set=$((gov_set + 1))
    else
        echo "  cpu$c: cannot set the governor"
        gov_failed=$((gov_failed + 1))
    fi
done

# --- 4. summary ---------------------------------------------------------------
verb=$( ((DRY_RUN)) && echo "would move" || echo "moved")
echo
echo "summary (CPUs $ISO_LIST isolated, housekeeping $HK_LIST):"
echo "  IRQs:     $verb $irq_moved, already off $irq_skipped, not movable $irq_failed"
echo "  threads:  $verb $th_moved, already off $th_clear, kept (pinned inside) $th_pinned, kernel threads skipped $th_kernel, failed $th_failed"
echo "  governor: performance on $gov_set CPU(s)$( ((DRY_RUN)) && echo " (would)"), no cpufreq $gov_missing, failed $gov_failed"
if command -v pgrep >/dev/null 2>&1 && pgrep -x irqbalance >/dev/null 2>&1; then
    echo "  note: irqbalance is running and will move IRQs back: set IRQBALANCE_BANNED_CPULIST=$ISO_LIST"
fi
echo "  not persistent: for boot-time isolation add isolcpus=/nohz_full=/rcu_nocbs=$ISO_LIST (see the header)"
