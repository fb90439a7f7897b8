"""rdzoo: a model zoo and architecture search for NLP encoders.

    import rdzoo
    rdzoo.list_models("densenet*")
    model = rdzoo.build("resnet-text-18", {"head.num_classes": 6})
    outcome = rdzoo.search("default", "trec", trials=20, timeout=3600)   # a records.Outcome
    rdzoo.best(outcome.study).trials[0].spec                              # records.TrialRecord

Importing rdzoo imports neither torch nor the spec machinery; each name below
loads its module on first use, so the query commands start fast.
"""

from .errors import SpecError
from .storage import DEFAULT_STORAGE

__version__ = "0.1.0"
__all__ = ["best", "build", "list_models", "load", "load_spec", "search", "Spec", "SpecError", "__version__"]


def __getattr__(name):
    if name in ("build", "list_models"):
        from . import registry

        return getattr(registry, name)
    if name == "load_spec":
        from .spec import load

        return load
    if name == "Spec":
        from .spec import Spec

        return Spec
    raise AttributeError(f"module 'rdzoo' has no attribute {name!r}")


def load(path):
    """A `.safetensors` file -> the model; a run folder -> a Run (model, tokenizer,
    label names, `.predict(texts)`)."""
    from pathlib import Path

    if Path(path).is_dir():
        from .runs import load_run

        return load_run(path)
    from .weights import load as load_weights

    return load_weights(path)


def search(space="default", data="trec", *, study: str | None = None, storage: str = DEFAULT_STORAGE,
           trials: int = 50, timeout: float | None = None, final: bool = True, display=None, top: int = 5,
           **settings):
    """Run an architecture search, as `rdzoo search` does, and return what it did.

    `space` is a search space's name or YAML file (or a space.Space), `data` a dataset's name or
    path (or a text.data.TextData), `study` the study's name (default SPACE-DATA), `timeout` in
    seconds for the trials and the final stage together (None: no limit), `final` whether the
    final stage follows the trials; `settings` are nas.SearchConfig's other fields (sampler,
    pruner, seed, epochs, objectives, max_params, max_memory, max_latency, teachers, device,
    precision, final: use `final_stage=nas.FinalStage(...)`). Unlike the command line, a search
    from Python has no teacher unless `teachers` names one (`teachers=None` chooses as `rdzoo
    search` does: the study's, else minilm-l6 where its checkpoint package is installed).
    `display` is one of display.py's (default: none).

    Returns a records.Outcome: the trials finished, why it stopped, the study's best `top`
    trials (records.TrialRecord) and the final stage's verdict (`outcome.verdict.recommended`).

    Raises:
        SpecError: a bad setting, or one the study was run with differs.
        DataError: the data cannot be read.
        TrainingError: every trial failed.
    """
    from .nas import FinalStage, SearchConfig, default_study, run
    from .space import Space, load_space

    space = space if isinstance(space, Space) else load_space(space)
    name = data if isinstance(data, str) else settings.pop("data_name", "data")
    if isinstance(data, str):
        from .text.data import load_data

        data = load_data(data)
    cfg = SearchConfig(space, name, study or default_study(space.name, name), storage, trials=trials, timeout=timeout,
                       final=settings.pop("final_stage", FinalStage()), final_runs="here" if final else "never",
                       **settings)
    outcome = run(cfg, data, display=display, top=top)
    error = outcome.failure()
    if error is not None:
        raise error
    return outcome


def best(study: str | None = None, storage: str = DEFAULT_STORAGE, *, top: int = 5, **filters):
    """A study's best trials and its final stage's verdict, as `rdzoo best` shows them: a
    records.Leaderboard whose `trials` are records.TrialRecord (best first by the study's score)
    and whose `verdict` is the final stage's (None before one ran).

    `study` defaults to the study of the newest trial; `filters` are nas.best's (family, skip,
    max_params, min_accuracy, max_memory, sort, pareto).

    Raises:
        StoreError: no database, or a study without rdzoo results.
        SpecError: at `study`, for a study the storage does not hold.
    """
    from .nas import best as leaderboard
    from .query import Results

    results = Results(storage)
    if study is None:
        study = results.latest_study()
    if study is None or not results.has_study(study):
        raise SpecError("study", f"no study {study!r} in {storage}")
    return leaderboard(results, study, top=top, **filters)
