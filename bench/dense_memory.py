"""Dense blocks' memory: densenet-text-121 on long sequences with and without
`memory_efficient` (checkpointed concatenations), side by side.

Each setting runs in a fresh process (so one's allocations cannot hide the
other's): build the model, then one training step; the peak activation memory
is the rise of the process's peak resident set during that step. Time per
training step is the median of several steps in that process.

    python bench/dense_memory.py            # batch 8 x 1024 tokens, 5 steps
    python bench/dense_memory.py --quick    # batch 4 x 512 tokens, 2 steps
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, statistics, sys, time
import torch
import rdzoo
batch, length, steps, efficient = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
torch.manual_seed(0)
model = rdzoo.build("densenet-text-121", {"embedding.max_len": length, "encoder.memory_efficient": efficient,
                                          "embedding.vocab_size": 8000})
opt = torch.optim.SGD(model.parameters(), lr=1e-3)
tokens = torch.randint(1, 8000, (batch, length))
labels = torch.randint(0, 2, (batch,))
def step():
    loss = torch.nn.functional.cross_entropy(model(tokens), labels)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
step()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
times = []
for _ in range(steps):
    start = time.perf_counter(); step(); times.append(time.perf_counter() - start)
print(json.dumps({"peak_activation_mb": peak / 1024, "step_seconds": statistics.median(times)}))
"""


def measure(batch, length, steps, efficient):
    out = subprocess.run([sys.executable, "-c", CHILD, str(batch), str(length), str(steps), "1" if efficient else "0"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    batch, length, steps = (4, 512, 2) if args.quick else (8, 1024, 5)
    plain = measure(batch, length, steps, False)
    efficient = measure(batch, length, steps, True)
    result = {"benchmark": "dense_memory", "model": "densenet-text-121", "batch": batch, "length": length,
              "plain": plain, "memory_efficient": efficient,
              "memory_saved": round(1 - efficient["peak_activation_mb"] / plain["peak_activation_mb"], 3),
              "time_ratio": round(efficient["step_seconds"] / plain["step_seconds"], 3)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
