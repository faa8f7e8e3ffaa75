#!/usr/bin/env bash
# Runs `tidewatch demo` for a while and samples its threads, memory, CPU time and disk
# writes every 30 s into OUT/samples.csv (BENCHMARKS.md, "Demo: the whole chain ...").
#   scripts/soak-demo.sh [DURATION, default 15m] [OUT, default /tmp/tidewatch-soak]
# BIN picks the binary (default: the release build of this checkout).
set -u
cd "$(dirname "$0")/.."
bin=${BIN:-${CARGO_TARGET_DIR:-target}/release/tidewatch}
dur=${1:-15m}
out=${2:-/tmp/tidewatch-soak}
rm -rf "$out"
mkdir -p "$out"
"$bin" demo --duration "$dur" --data-dir "$out/data" >"$out/demo.log" 2>&1 &
pid=$!
tck=$(getconf CLK_TCK)
start=$(date +%s)
echo "t_s,rss_kib,hwm_kib,cpu_s,threads,data_kib,write_syscalls,write_bytes" >"$out/samples.csv"
while kill -0 $pid 2>/dev/null; do
  now=$(date +%s)
  rss=$(awk '/VmRSS/{print $2}' /proc/$pid/status 2>/dev/null)
  hwm=$(awk '/VmHWM/{print $2}' /proc/$pid/status 2>/dev/null)
  threads=$(awk '/Threads/{print $2}' /proc/$pid/status 2>/dev/null)
  cpu=$(awk -v t="$tck" '{print ($14+$15)/t}' /proc/$pid/stat 2>/dev/null)
  data=$(du -sk "$out/data" 2>/dev/null | cut -f1)
  syscw=$(awk '/^syscw/{print $2}' /proc/$pid/io 2>/dev/null)
  wbytes=$(awk '/^write_bytes/{print $2}' /proc/$pid/io 2>/dev/null)
  [ -n "$rss" ] && echo "$((now - start)),$rss,$hwm,$cpu,$threads,$data,$syscw,$wbytes" >>"$out/samples.csv"
  sleep 30
done
wait $pid
echo "demo exit status $?; WAL's last segment: $(ls "$out/data/store/wal" | grep segment | tail -1)"
