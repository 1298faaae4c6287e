#!/bin/bash
# Issue 18: the byte path's cost (BENCHMARKS.md, "Cross-tokenizer pairs"), interleaved on an idle machine:
# token path, --byte-level on the same pair, the cross pair; twice. Output folder: $1.
cd "$(dirname "$0")/.."
B=build/specsteer
L=models/minilamp/generalist.gguf
S=models/minilamp/specialist.gguf
X=models/minilamp/specialist-x896.gguf
O=${1:-/tmp/specsteer-cross-bench}
rm -rf $O; mkdir -p $O
for rep in 1 2; do
  $B eval --data data/minilamp/review.jsonl --task review --slm $S --llm $L --methods llm,specsteer --limit 100 -n 110 -t 1 --quiet --out $O/tok-$rep > /dev/null 2>&1
  $B eval --data data/minilamp/review.jsonl --task review --slm $S --llm $L --methods llm,specsteer --byte-level --limit 100 -n 110 -t 1 --quiet --out $O/byte-$rep > /dev/null 2>&1
  $B eval --data data/minilamp/review.jsonl --task review --slm $X --llm $L --methods llm,specsteer --limit 100 -n 110 -t 1 --quiet --out $O/cross-$rep > /dev/null 2>&1
done
F=../shared/fixtures/golden
for rep in 1 2; do
  /usr/bin/time -f "%e s %M KB" $B generate --llm $F/tiny-llama3-f32/tiny-llama3-f32.gguf --slm $F/tiny-qwen3-q8_0/tiny-qwen3-q8_0.gguf \
    --method specsteer --input "Write a short review of the film." --private-context "I love jazz." -n 40 --seed 7 -t 1 --json > $O/fixture-$rep.json 2> $O/fixture-$rep.time
done
