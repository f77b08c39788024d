#!/usr/bin/env bash
# Time from `make run` to a healthy stack (GET /healthz = 200), then the idle RSS of the whole
# stack (the nrm process and its broker) after 20 s.   bash bench/startup.sh
# Uses NRM_PORT (8000) and NRM_DATA_DIR (var; pass a fresh one to time a first start).
set -euo pipefail
cd "$(dirname "$0")/.."
port="${NRM_PORT:-8000}"
start=$(date +%s.%N)
make run > "${TMPDIR:-/tmp}/nrm-startup.log" 2>&1 &
until curl -s -o /dev/null -w "%{http_code}" "http://127.0.0.1:$port/healthz" 2>/dev/null | grep -q 200; do
  sleep 0.1
done
end=$(date +%s.%N)
echo "healthy after $(echo "$end - $start" | bc) s"
sleep 20
pid=$(pgrep -f "bin/nrm up" | head -1)
total=0
for p in $pid $(pgrep -P "$pid"); do
  kb=$(awk '/VmRSS/ {print $2}' "/proc/$p/status")
  echo "  $(cat "/proc/$p/comm") (pid $p): $((kb / 1024)) MB"
  total=$((total + kb))
done
echo "idle RSS of the stack: $((total / 1024)) MB"
kill -INT "$pid"
wait
