import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")
# `rdzoo search` without --teacher fine-tunes minilm-l6 first where its checkpoint package is
# installed: minutes. A test searches without a teacher unless it names one (or unsets this).
os.environ["RDZOO_TEACHER"] = "none"

REPO = Path(__file__).resolve().parents[1]
# Tests use only what the repository holds (built-in datasets, small files they write): a clone has
# nothing beside it, and .ci/run runs them from one.


@pytest.fixture(autouse=True)
def _seed():
    import torch

    torch.manual_seed(0)
