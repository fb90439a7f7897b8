"""matplotlib for the benchmarks' plots, headless; None when it is not installed
(pip install -e '.[bench]')."""


def pyplot():
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
