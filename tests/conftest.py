import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture
def uji_dir():
    d = SHARED_DATA / "uji"
    if not d.is_dir():
        pytest.skip(f"real UJI samples not found at {d} (../shared/data is not beside this checkout)")
    return d
