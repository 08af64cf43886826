"""What the evaluation's reference (eval/reference.py) and the bench's peer (bench/peer/st_encode.py)
share: both run sentence-transformers on the CPU, in the Python environment of eval/lib/python.ts,
and record the versions of the same libraries."""

from __future__ import annotations

import platform


def stack_versions() -> dict[str, str]:
    """Python's version and each library's own idea of its version (torch's carries its build)."""
    import numpy as np
    import sentence_transformers
    import torch
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "sentence-transformers": sentence_transformers.__version__,
        "transformers": transformers.__version__,
        "numpy": np.__version__,
    }
