"""The benchmarks' datasets by name: the built-in TREC-6, and SST-2 from ../shared/datasets."""

from pathlib import Path

from rdzoo.text.data import load_data

SST2 = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "sst2"


def load(name: str):
    return load_data(SST2 if name == "sst2" else name)
