#!/usr/bin/env bash
# SpecSteer at deployment sizes (issue 13): MiniLaMP schedules from the
# bundled pair, replayed on a real-shaped edge/cloud pair made by
# `gguf synth`, against the cloud LLM decoding alone, at several RTTs.
#   [LIMIT=8 RTTS=0,20,50 THREADS=2 EDGE_PRESET=qwen3-0.6b CLOUD_PRESET=qwen3-8b TYPE=q4_0 DIR=/tmp/specsteer-replay]
#   (the paper's own pair: CLOUD_PRESET=qwen3-32b, an 18.4 GB Q4_0 file; it
#   needs ~19 GB of free memory to replay)
#   [DATA=data/minilamp/review.jsonl METHODS=llm,sd,lightcosteer,specsteer EVAL_FLAGS="--draft 4 --no-pipeline"]
#   tools/replay_bench.sh [BIN]
# Run it on an otherwise idle machine: it is a timed benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build/specsteer}
LIMIT=${LIMIT:-8}
RTTS=${RTTS:-0,20,50}
THREADS=${THREADS:-2}
TYPE=${TYPE:-q4_0}
EDGE_PRESET=${EDGE_PRESET:-qwen3-0.6b}
CLOUD_PRESET=${CLOUD_PRESET:-qwen3-8b}
DIR=${DIR:-/tmp/specsteer-replay}
DATA=${DATA:-data/minilamp/review.jsonl}  # e.g. an unseen split: tools/minilamp/generate.py --seed S --users N --out D
METHODS=${METHODS:-llm,sd,lightcosteer,specsteer}
EVAL_FLAGS=${EVAL_FLAGS:-}                # e.g. --no-pipeline, or --draft 16 --draft-p-min 0.75
mkdir -p "$DIR"
EDGE="$DIR/$EDGE_PRESET-$TYPE.gguf"
CLOUD="$DIR/$CLOUD_PRESET-$TYPE.gguf"
[ -f "$EDGE" ] || "$BIN" gguf synth --preset "$EDGE_PRESET" --type "$TYPE" -o "$EDGE"
[ -f "$CLOUD" ] || "$BIN" gguf synth --preset "$CLOUD_PRESET" --type "$TYPE" -o "$CLOUD"

# The schedules: an ordinary eval of the bundled pair (its results.jsonl rows carry "trace").
TRACES="$DIR/traces"
# shellcheck disable=SC2086  # EVAL_FLAGS is a list of flags
"$BIN" eval --data "$DATA" --task review \
  --slm models/minilamp/specialist.gguf --llm models/minilamp/generalist.gguf \
  --methods "$METHODS" --lambda 0.1,0.5,1.0 \
  --limit "$LIMIT" --max-new-tokens 96 --threads 1 --out "$TRACES" $EVAL_FLAGS >/dev/null

"$BIN" replay --trace "$TRACES/results.jsonl" --edge-model "$EDGE" --llm "$CLOUD" \
  --rtt-ms "$RTTS" --edge-threads "$THREADS" --cloud-threads "$THREADS"
