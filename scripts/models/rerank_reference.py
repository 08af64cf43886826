"""Reference cross-encoder scores for the reranker parity test (embedder/test/rerank.test.ts).

Loads the ms-marco-MiniLM-shaped cross-encoder (bench/lib/cross-encoder-model.ts: seeded random
weights, written both as ONNX for transformers.js and as model.safetensors for PyTorch) with
sentence-transformers' CrossEncoder, exactly as a user of that library loads
cross-encoder/ms-marco-MiniLM-L6-v2 (its defaults: max_length = min(tokenizer.model_max_length,
max_position_embeddings) = 512, `tokenizer(pairs, padding=True, truncation=True)` = longest_first,
activation Sigmoid for a one-label model), and writes test/fixtures/reference/rerank-shaped.json:
for every query/document pair of test/fixtures/reference/rerank-pairs.json

- `score`: CrossEncoder.predict (sigmoid of the logit) and `logit`: the same with Identity,
- the token ids the model actually reads (special tokens included, uint16 little-endian, base64)
  and how many of them are segment 0 ([CLS] query [SEP]),
- per query, CrossEncoder.rank's order of the documents.

The weights are random: this proves serving parity (tokenization, truncation, the forward pass and
the activation), not reranking quality.

Setup (once; a CPU-only machine is enough):

    python3 -m venv .cache/py-ref
    .cache/py-ref/bin/pip install -r scripts/models/requirements.txt
    npm run models                              # the tokenizer comes from the model cache
    npm run bench:model -- --cross-encoder      # builds .data/bench-models/ms-marco-minilm-l6-shaped
    .cache/py-ref/bin/python scripts/models/rerank_reference.py

Only ids and numbers are printed; never the texts.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import sentence_transformers  # noqa: E402
import tokenizers  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from sentence_transformers import CrossEncoder  # noqa: E402
from transformers import AutoModelForSequenceClassification  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
MODEL_NAME = "ms-marco-minilm-l6-shaped"
MODEL_DIR = REPO / ".data/bench-models" / MODEL_NAME
PAIRS = REPO / "test/fixtures/reference/rerank-pairs.json"
OUT = REPO / "test/fixtures/reference/rerank-shaped.json"
# The files whose bytes define the model; the test refuses a build that differs from them.
PINNED = ["config.json", "tokenizer.json", "model.safetensors", "onnx/model.onnx"]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def u16_b64(ids: list[int]) -> str:
    return base64.b64encode(np.asarray(ids, dtype="<u2").tobytes()).decode("ascii")


def main() -> None:
    meta_file = MODEL_DIR / "bench-model.json"
    if not meta_file.exists():
        sys.exit(f"{MODEL_DIR} is missing: run `npm run bench:model -- --cross-encoder` first")
    meta = json.loads(meta_file.read_text())
    files = {}
    for rel in PINNED:
        digest = sha256((MODEL_DIR / rel).read_bytes())
        if digest != meta["files"][rel]["sha256"]:
            sys.exit(f"{rel}: sha256 differs from bench-model.json; rebuild with --force")
        files[rel] = digest

    # Every weight must load: a missing or misnamed tensor would be initialised at random.
    _, info = AutoModelForSequenceClassification.from_pretrained(MODEL_DIR, output_loading_info=True)
    if any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")):
        sys.exit(f"model.safetensors does not load cleanly: {info}")

    torch.manual_seed(0)
    model = CrossEncoder(str(MODEL_DIR), device="cpu")
    model.model.eval()
    activation = type(model.activation_fn).__name__
    groups = json.loads(PAIRS.read_text(encoding="utf-8"))["groups"]

    out_groups = []
    for group in groups:
        query, docs = group["query"], group["documents"]
        pairs = [[query, d] for d in docs]
        # predict() with the model's own activation (Sigmoid) first: passing activation_fn to
        # predict replaces the model's activation for later calls too.
        scores = model.predict(pairs, batch_size=32, convert_to_numpy=True)
        ranked = model.rank(query, docs, batch_size=32)
        logits = model.predict(
            pairs, batch_size=32, activation_fn=torch.nn.Identity(), convert_to_numpy=True
        )
        model.set_activation_fn(None)
        features = model.tokenizer(pairs, padding=True, truncation=True)
        items = []
        for i in range(len(docs)):
            mask = features["attention_mask"][i]
            n = int(sum(mask))
            ids = features["input_ids"][i][:n]
            types = features["token_type_ids"][i][:n]
            whole_q = len(model.tokenizer(query, add_special_tokens=False)["input_ids"])
            whole_d = len(model.tokenizer(docs[i], add_special_tokens=False)["input_ids"])
            items.append(
                {
                    "index": i,
                    "score": float(scores[i]),
                    "logit": float(logits[i]),
                    "ids": u16_b64(ids),
                    "tokens": n,
                    "segment0": int(types.count(0)),
                    "query_tokens": whole_q,
                    "document_tokens": whole_d,
                    "truncated": whole_q + whole_d + 3 > n,
                }
            )
        out_groups.append(
            {"id": group["id"], "ranking": [int(r["corpus_id"]) for r in ranked], "pairs": items}
        )
        print(
            f"{group['id']}: {len(docs)} pairs, logits "
            f"{min(float(x) for x in logits):.3f}..{max(float(x) for x in logits):.3f}, "
            f"truncated {sum(1 for it in items if it['truncated'])}"
        )

    fixture = {
        "_note": (
            "sentence-transformers CrossEncoder on the ms-marco-MiniLM-shaped cross-encoder with "
            "seeded random weights (bench/lib/cross-encoder-model.ts): serving parity, not quality. "
            "Made by scripts/models/rerank_reference.py."
        ),
        "model": MODEL_NAME,
        "generator_version": meta["generatorVersion"],
        "files_sha256": files,
        "library": {
            "sentence_transformers": sentence_transformers.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "torch": torch.__version__,
        },
        # Of the pairs' content (compact JSON, as JavaScript's JSON.stringify writes it), so that
        # reformatting the file (prettier) does not change it.
        "pairs_sha256": sha256(
            json.dumps(groups, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        ),
        "max_length": model.max_length,
        "activation": activation,
        "groups": out_groups,
    }
    OUT.write_text(json.dumps(fixture, indent=2) + "\n")
    print(f"wrote {OUT.relative_to(REPO)} (format it: npx prettier --write {OUT.relative_to(REPO)})")


if __name__ == "__main__":
    main()
