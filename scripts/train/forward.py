#!/usr/bin/python3
"""Runs the PyTorch Zamba2 (zamba2.py) on checkpoints, for the parity tests.

  /usr/bin/python3 scripts/train/forward.py jobs.json

jobs.json: a list of {"model": dir, "ids": [...], "out": path, "scan": "chunked"|"sequential",
"chunk": Q (optional, default config chunk_size), "dtype": "f32"|"f64" (compute dtype, default f32)}.
Each job writes logits [T, V] as little-endian float64 (whatever the compute dtype) to "out".
One process for all jobs, so torch is imported once.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

from zamba2 import forward, load_checkpoint  # noqa: E402


def main():
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    with open(sys.argv[1]) as f:
        jobs = json.load(f)
    cache = {}
    for job in jobs:
        dtype = torch.float64 if job.get('dtype') == 'f64' else torch.float32
        key = (job['model'], dtype)
        if key not in cache:
            cache[key] = load_checkpoint(job['model'], dtype)
        cfg, W = cache[key]
        ids = torch.tensor([job['ids']], dtype=torch.long)
        with torch.no_grad():
            logits = forward(cfg, W, ids, scan=job.get('scan', 'chunked'), chunk=job.get('chunk'))
        logits[0].to(torch.float64).numpy().tofile(job['out'])
    print(f'ok {len(jobs)} jobs')


if __name__ == '__main__':
    main()
