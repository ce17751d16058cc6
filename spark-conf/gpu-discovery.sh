#!/usr/bin/env bash
# Spark's GPU discovery script: prints {"name": "gpu", "addresses": [...]} for this host.
# The addresses come from nvidia-smi; MAGGY_GPU_ADDRESSES (e.g. "0,1") overrides them, which is how
# the local platform exercises Spark's real GPU scheduling on a machine without GPUs.
set -euo pipefail
if [ -n "${MAGGY_GPU_ADDRESSES:-}" ]; then
    addrs="$MAGGY_GPU_ADDRESSES"
elif command -v nvidia-smi >/dev/null 2>&1; then
    addrs="$(nvidia-smi --query-gpu=index --format=csv,noheader | paste -sd, -)"
else
    addrs=""
fi
quoted="$(printf '%s' "$addrs" | sed -E 's/[[:space:]]//g; s/([^,]+)/"\1"/g')"
printf '{"name": "gpu", "addresses": [%s]}\n' "$quoted"
