#!/usr/bin/env bash
# GPU check: serve a small model with vLLM on loopback, point the generator and the Blocksworld
# evaluation at it, and print what the server does (capabilities found by the construction probe),
# how far its log-probs are from the same model run in-process, and the 3E table.
#
# Usage: evals/gpu_vllm_check.sh [MODEL] [LIMIT]
#   MODEL  a local model folder or hub id for `vllm serve` (default: the embedded SmolLM2-135M-Instruct,
#          de-quantised to safetensors by srm_agent.embedded, so nothing is downloaded)
#   LIMIT  Blocksworld problems to run (default 10)
# Needs: a CUDA GPU, `pip install vllm` and this package with its `server` extra in one environment
# ($PYTHON, default python3). Logs and results go to $OUT_DIR (default ./vllm-check).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUT_DIR=${OUT_DIR:-vllm-check}
LIMIT=${2:-10}
PORT=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
MODEL=${1:-$("$PYTHON" -c 'from srm_agent.embedded import converted_generator_dir; print(converted_generator_dir())')}
NAME=check-model
URL="http://127.0.0.1:$PORT/v1"
mkdir -p "$OUT_DIR"

# The flags our calls need: raw (untempered) log-probs of sampled tokens, at least 1 log-prob per token,
# prefix caching (a search sends many prompts that share a long few-shot prefix). vLLM answers echo +
# logprobs and lists of prompts on /v1/completions without further flags.
vllm serve "$MODEL" --served-model-name "$NAME" --host 127.0.0.1 --port "$PORT" \
  --logprobs-mode raw_logprobs --max-logprobs 5 --enable-prefix-caching \
  --dtype float32 --max-model-len 4096 --gpu-memory-utilization 0.4 >"$OUT_DIR/vllm.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null' EXIT
for _ in $(seq 300); do
  curl -sf "$URL/models" >/dev/null && break
  kill -0 "$SERVER" 2>/dev/null || { echo "vllm serve exited; see $OUT_DIR/vllm.log" >&2; tail -20 "$OUT_DIR/vllm.log" >&2; exit 1; }
  sleep 1
done
curl -sf "$URL/models" >/dev/null || { echo "vllm serve did not answer in 300 s; see $OUT_DIR/vllm.log" >&2; exit 1; }

"$PYTHON" - "$URL" "$NAME" "$MODEL" <<'EOF'
import sys, time
from srm_agent.generators import OpenAICompatibleGenerator, TransformersGenerator
from srm_tasks.blocksworld import BlocksworldTask
from srm_tasks.blocksworld.problems import generate_problems

url, name, model = sys.argv[1:]
started = time.time()
server = OpenAICompatibleGenerator(url, name)
print(f"probe: {server.capabilities} ({time.time() - started:.1f} s)")
task = BlocksworldTask()
local = TransformersGenerator.from_pretrained(model)
worst = 0.0
for problem in generate_problems(5, steps=(2, 4), seed=1):
    state = task.initial_state(problem)
    prompt, actions = task.prompt(state), task.legal_actions(state)
    a, b = server.score_choices(prompt, actions), local.score_choices(prompt, actions)
    worst = max(worst, max(abs(x.logprob - y.logprob) / y.num_tokens for x, y in zip(a, b)))
print(f"score_choices vs in-process ({local.device}): largest difference {worst:.4f} nats per token")
started = time.time()
proposed = server.propose(prompt, 8, temperature=0.8, max_new_tokens=64, seed=0)
seconds = time.time() - started
print(f"propose k=8: {proposed.usage.generated_tokens / seconds:.0f} tokens/s, log-probs "
      f"{[round(c.logprob, 2) for c in proposed]}")
EOF

"$PYTHON" -m evals.run --bench blocksworld --limit "$LIMIT" --generator "openai:$NAME@$URL" --out "$OUT_DIR/eval"
