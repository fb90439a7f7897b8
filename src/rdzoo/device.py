"""Where a model runs: the device, the numeric precision, each worker's GPU and peak memory.

`--device auto|cpu|cuda|cuda:N|mps` and `--precision auto|fp32|bf16|fp16` are
resolved here once per command into a `torch.device` and a `Precision`. `auto`
takes CUDA when PyTorch sees a GPU, else the CPU; precision `auto` is bf16
autocast on a GPU that has bf16 (Ampere and later), fp16 autocast with a
gradient scaler on an older GPU, and fp32 on the CPU and MPS (mixed precision,
Micikevicius et al. 2018). The parsing and the worker-to-GPU assignment are
plain functions of their arguments, so they are tested without a GPU; torch is
imported only by the functions that touch a device.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

from .errors import DeviceError

DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda)(?::(\d+))?$")


def parse_device(text: str) -> tuple[str, int | None]:
    """'cuda:1' -> ('cuda', 1); 'cpu' -> ('cpu', None). Raises DeviceError on anything else."""
    m = _DEVICE.match((text or "").strip().lower())
    if not m or (m.group(2) is not None and m.group(1) != "cuda"):
        raise DeviceError(f"device {text!r}: expected one of {', '.join(DEVICES)}", "device")
    return m.group(1), None if m.group(2) is None else int(m.group(2))


def parse_gpus(text: str | None) -> list[int] | None:
    """'0,2,3' -> [0, 2, 3]. Raises DeviceError on anything but distinct non-negative integers."""
    if text is None:
        return None
    try:
        gpus = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        gpus = []
    if not gpus or any(g < 0 for g in gpus) or len(set(gpus)) != len(gpus):
        raise DeviceError(f"gpus {text!r}: expected distinct GPU numbers separated by commas, e.g. 0,2,3", "gpus")
    return gpus


def parse_bytes(text: str | None, param: str = "max_memory") -> float | None:
    """'8GB', '512MB', '1.5GiB', '8G', '2e9' -> bytes (GB = 1e9, GiB = 2**30); None stays None.

    Raises DeviceError at `param` (the parameter the size is for) for anything but a positive size."""
    if text is None:
        return None
    m = re.match(r"^\s*([0-9.eE+]+)\s*([kKmMgGtT]?)(i?)([bB]?)\s*$", text)
    try:
        value = float(m.group(1)) if m else float("nan")
    except ValueError:
        value = float("nan")
    if not m or not value > 0:
        raise DeviceError(f"{param} {text!r}: expected a size such as 8GB, 512MB or 1.5GiB", param)
    power = " kmgt".index(m.group(2).lower() or " ")
    return value * ((1024 if m.group(3) else 1000) ** power)


def worker_devices(workers: int, device: str = "auto", gpu_count: int = 0, gpus: list[int] | None = None) -> list[str]:
    """The device of each of `workers` local search workers: one GPU each, round robin.

    `device` is the device text (as `parse_device` reads it), `gpu_count` how many GPUs the
    machine has and `gpus` a list of GPU numbers (`parse_gpus`). auto or cuda spread the workers over `gpus` (or all
    GPUs) in turn: 5 workers on 2 GPUs -> cuda:0, cuda:1, cuda:0, cuda:1, cuda:0.
    auto on a machine without GPUs, cpu, mps and cuda:N put every worker there.
    Raises DeviceError for a GPU the machine does not have or `gpus` without CUDA.
    """
    kind, index = parse_device(device)
    if gpus is not None and (kind not in ("auto", "cuda") or index is not None):
        raise DeviceError(f"gpus picks CUDA devices, not {device}", "gpus")
    if kind == "cuda" and gpu_count == 0:
        raise DeviceError(missing_cuda(device), "device")
    if gpus is not None:
        missing = [g for g in gpus if g >= gpu_count]
        if missing:
            raise DeviceError(f"gpus {','.join(map(str, gpus))}: no GPU {missing[0]} on this machine; it has "
                              f"{gpu_count} ({', '.join(map(str, range(gpu_count))) or 'none'})", "gpus")
    if kind == "cuda" and index is not None:
        if index >= gpu_count:
            raise DeviceError(f"device {device}: no such GPU; this machine has {gpu_count} "
                              f"(cuda:0 to cuda:{gpu_count - 1})", "device")
        return [device] * workers
    if kind in ("auto", "cuda") and gpu_count:
        pool = gpus if gpus is not None else list(range(gpu_count))
        return [f"cuda:{pool[i % len(pool)]}" for i in range(workers)]
    return ["cpu" if kind == "auto" else kind] * workers


def missing_cuda(device: str) -> str:
    """The DeviceError message for device `device` asking for CUDA where PyTorch sees none: says
    whether this PyTorch lacks CUDA or just sees no GPU, and what to use instead."""
    import torch

    why = ("this PyTorch is built without CUDA (a CPU-only wheel)" if torch.version.cuda is None
           else f"this PyTorch (CUDA {torch.version.cuda}) sees no GPU: check the driver with nvidia-smi "
                "and CUDA_VISIBLE_DEVICES")
    return f"device {device}: no CUDA device, {why}; use cpu (or auto), and see `rdzoo env`"


def resolve_device(text: str = "auto"):
    """Device text (auto, cpu, cuda, cuda:N, mps) -> torch.device, checking the device is there.
    Raises DeviceError at `device`."""
    import torch

    kind, index = parse_device(text)
    if kind == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(missing_cuda(text), "device")
        count = torch.cuda.device_count()
        if index is not None and index >= count:
            raise DeviceError(f"device {text}: no such GPU; this machine has {count} (cuda:0 to cuda:{count - 1})",
                              "device")
        return torch.device("cuda", index if index is not None else torch.cuda.current_device())
    if kind == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise DeviceError(f"device {text}: no Apple MPS device here; use cpu (or auto)", "device")
    return torch.device(kind)


@dataclass(frozen=True)
class Precision:
    """How a forward pass computes: fp32, or autocast to bf16 or fp16 (fp16 with a gradient scaler).

    `dtype` is the autocast type (None for fp32). Weights and optimizer state stay fp32 either way.
    """

    name: str  # fp32 | bf16 | fp16
    device_type: str  # cpu | cuda | mps

    @property
    def dtype(self):
        """The autocast torch.dtype: torch.bfloat16, torch.float16, or None for fp32."""
        import torch

        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.name)

    def autocast(self):
        """A context that runs the forward pass at this precision (a no-op for fp32)."""
        import contextlib

        import torch

        if self.name == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def scaler(self):
        """A GradScaler for fp16 (whose small range underflows gradients without one), else None."""
        if self.name != "fp16":
            return None
        import torch

        return torch.amp.GradScaler(self.device_type)


def bf16_supported(device) -> bool:
    """Whether autocast can run bf16 on this torch.device: CUDA's own check on a GPU, True on CPU and MPS."""
    import torch

    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type in ("cpu", "mps")  # PyTorch's CPU autocast runs bf16 on every x86/Arm CPU, slowly on old ones


def resolve_precision(text: str, device) -> Precision:
    """Precision text (auto, fp32, bf16, fp16) -> Precision for `device`. Raises DeviceError at
    `precision` for an unknown name or one the device lacks."""
    text = (text or "auto").strip().lower()
    if text not in PRECISIONS:
        raise DeviceError(f"precision {text!r}: expected one of {', '.join(PRECISIONS)}", "precision")
    if text == "auto":
        if device.type != "cuda":
            text = "fp32"  # CPUs gain little from autocast, and bf16 costs accuracy on small models
        else:
            text = "bf16" if bf16_supported(device) else "fp16"
    if text == "bf16" and not bf16_supported(device):
        raise DeviceError(f"precision bf16: {device_name(device)} has no bf16; use fp16 (with a gradient scaler) "
                          "or fp32", "precision")
    return Precision(text, device.type)


def device_name(device) -> str:
    """A torch.device for messages: 'cuda:0 (NVIDIA H100 ...)' with the GPU's name, else str(device)."""
    import torch

    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def to_device(tensor, device):
    """Copy a CPU batch to `device`: through pinned memory and without waiting, to a GPU."""
    if device.type != "cuda":
        return tensor if device.type == "cpu" else tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


def synchronize(device) -> None:
    """Wait for the device's queued work (timings on a GPU are wrong without it)."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


class MemoryMeter:
    """Peak memory of a piece of work, in bytes.

    On a GPU: CUDA's peak allocated memory (what tensors held, the caching
    allocator's reserve excluded), reset at `start`. On the CPU (and MPS): the
    process's peak resident memory, whose high-water mark Linux resets through
    /proc/self/clear_refs; where that is not allowed, the peak since the process
    started (getrusage), which can only overstate a later trial's peak.
    """

    def __init__(self, device):
        self.device = device

    def start(self) -> "MemoryMeter":
        """Reset the peak (CUDA's peak allocated, or Linux's VmHWM where allowed); returns self."""
        import torch

        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            try:
                with open("/proc/self/clear_refs", "w") as f:
                    f.write("5")  # resets VmHWM to the current resident size (Linux 4.0+)
            except OSError:
                pass
        return self

    def peak(self) -> int:
        """Peak memory in bytes since `start`: CUDA's peak allocated on a GPU, else the process's peak RSS."""
        import torch

        if self.device.type == "cuda":
            return int(torch.cuda.max_memory_allocated(self.device))
        return peak_rss()


def peak_rss() -> int:
    """The process's peak resident memory in bytes."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, KiB on Linux


def oom_errors() -> tuple[type, ...]:
    """The exceptions PyTorch raises when a device runs out of memory."""
    import torch

    found = {getattr(torch, "OutOfMemoryError", None), getattr(torch.cuda, "OutOfMemoryError", None)}
    return tuple(e for e in found if e is not None)


def asked_for(message: str) -> str | None:
    """'CUDA out of memory. Tried to allocate 2.00 GiB ...' -> '2.00 GiB'."""
    m = re.search(r"[Tt]ried to allocate ([0-9.]+ ?[KMGT]?i?B)", message)
    return m.group(1) if m else None


def free_cache(device) -> None:
    """Give the caching allocator's unused blocks back, after an out-of-memory error."""
    import gc

    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()


def env_info() -> dict:
    """What `rdzoo env` prints: versions of rdzoo, Python, torch, CUDA, cuDNN and Optuna, and the devices."""
    import platform
    from importlib import metadata

    import torch

    from . import __version__

    def version(package):
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None

    devices = [{"device": "cpu", "name": platform.processor() or platform.machine(), "bf16": True}]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            devices.append({"device": f"cuda:{i}", "name": p.name, "memory": p.total_memory,
                            "capability": f"{p.major}.{p.minor}", "bf16": p.major >= 8})
    if hasattr(torch.backends, "mps") and torch.backends.mps.is_available():
        devices.append({"device": "mps", "name": "Apple MPS", "bf16": True})
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {"rdzoo": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "cuda": torch.version.cuda, "cudnn": cudnn, "cuda_available": torch.cuda.is_available(),
            "optuna": version("optuna"), "timm": version("timm"), "devices": devices,
            "auto_device": str(resolve_device("auto"))}
