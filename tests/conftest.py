import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))
# One thread per process: the suite runs beside a Streamlit server and Chromium on
# 2 shared cores, where spinning OpenMP threads make small matmuls 10x slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture
def uji_dir():
    d = SHARED_DATA / "uji"
    if not d.is_dir():
        pytest.skip(f"real UJI samples not found at {d} (../shared/data is not beside this checkout)")
    return d
