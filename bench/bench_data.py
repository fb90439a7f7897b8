"""The benchmarks' datasets by name (the built-in TREC-6, SST-2 from ../shared/datasets) and their published rows."""

from pathlib import Path

from rdzoo.text.data import load_data

SST2 = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "sst2"
# test accuracy (%) from ../shared/datasets/README.md: Kim (2014), its replication, and with word2vec
PUBLISHED = {"trec": {"CNN-rand (Kim 2014)": 91.2, "CNN-rand replication": 88.2, "CNN-non-static": 93.6},
             "sst2": {"CNN-rand (Kim 2014)": 82.7, "CNN-rand replication": 83.5, "CNN-non-static": 87.2}}


def load(name: str):
    return load_data(SST2 if name == "sst2" else name)
