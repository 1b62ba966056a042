"""Accelerators (CUDA GPUs) of this machine, with their memory; nothing is required when absent.

Found through NVML (``pynvml`` / ``nvidia-ml-py``) when installed, else ``nvidia-smi``, else torch
when a GPU device node exists. Neither path creates a CUDA context unless it falls back to torch.
A machine without GPUs gets an empty list quickly and imports nothing heavy.

``RILL_STANDIN_GPUS="name:memory_gb[,...]"`` declares stand-in accelerators instead (kind
``standin``): placement treats them as GPUs, and a worker placed on one computes on the CPU. They
let a machine without a GPU play the GPU host of a two-node set-up in tests and benchmarks.
"""

from __future__ import annotations

import glob
import importlib.util
import logging
import os
import shutil
import subprocess
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)

GIB = 1024**3


@dataclass(frozen=True)
class Accelerator:
    """One GPU: its index on its host, name, and memory in GiB (``memory_free_gb`` when measured)."""

    index: int
    name: str
    memory_total_gb: float
    memory_free_gb: float
    kind: str = "cuda"
    uuid: str = ""

    @property
    def device(self) -> str:
        return f"{self.kind}:{self.index}"

    def to_dict(self) -> dict:
        return {
            "index": self.index,
            "name": self.name,
            "memory_total_gb": round(self.memory_total_gb, 2),
            "memory_free_gb": round(self.memory_free_gb, 2),
            "kind": self.kind,
            "uuid": self.uuid,
        }


def _from_nvml() -> list[Accelerator] | None:
    if importlib.util.find_spec("pynvml") is None:
        return None
    import pynvml

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return None
    try:
        out = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h)
            name = pynvml.nvmlDeviceGetName(h)
            uuid = pynvml.nvmlDeviceGetUUID(h)
            out.append(
                Accelerator(
                    i,
                    name.decode() if isinstance(name, bytes) else name,
                    mem.total / GIB,
                    mem.free / GIB,
                    uuid=uuid.decode() if isinstance(uuid, bytes) else uuid,
                )
            )
        return out
    finally:
        pynvml.nvmlShutdown()


def _from_nvidia_smi() -> list[Accelerator] | None:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        res = subprocess.run(
            [exe, "--query-gpu=index,name,memory.total,memory.free,uuid", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        log.warning("nvidia-smi failed: %s", e)
        return None
    if res.returncode != 0:
        return []  # the tool is there but no driver or no device
    out = []
    for line in res.stdout.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 5:
            idx, name, total, free, uuid = parts[:5]
            out.append(Accelerator(int(idx), name, float(total) / 1024, float(free) / 1024, uuid=uuid))
    return out


def _from_torch() -> list[Accelerator]:
    if not (glob.glob("/dev/nvidia[0-9]*") or os.path.exists("/dev/kfd")):
        return []  # no GPU device node: do not pay for importing torch to learn that
    if importlib.util.find_spec("torch") is None:
        return []
    import torch

    if not torch.cuda.is_available():
        return []
    out = []
    for i in range(torch.cuda.device_count()):
        free, total = torch.cuda.mem_get_info(i)
        out.append(Accelerator(i, torch.cuda.get_device_name(i), total / GIB, free / GIB))
    return out


_cache: tuple[float, list[Accelerator]] | None = None
ENV_STANDIN = "RILL_STANDIN_GPUS"
STANDIN = "standin"


def standin_accelerators(value: str) -> list[Accelerator]:
    """The stand-ins ``value`` declares (``name:memory_gb,...``); a malformed entry is refused by name."""
    out = []
    for i, entry in enumerate(e.strip() for e in value.split(",") if e.strip()):
        name, _, memory = entry.rpartition(":")
        try:
            gb = float(memory)
        except ValueError:
            gb = -1.0
        if not name or not gb > 0:
            raise ValueError(f"{ENV_STANDIN}: entry {entry!r} is not NAME:MEMORY_GB (memory > 0)")
        out.append(Accelerator(i, name, gb, gb, kind=STANDIN))
    return out


def detect_accelerators(max_age_s: float = 5.0) -> list[Accelerator]:
    """This machine's GPUs (empty when it has none), re-measured when the last look is older."""
    global _cache
    now = time.monotonic()
    if _cache is not None and now - _cache[0] < max_age_s:
        return list(_cache[1])
    if os.environ.get(ENV_STANDIN):
        return standin_accelerators(os.environ[ENV_STANDIN])
    found = _from_nvml()
    if found is None:
        found = _from_nvidia_smi()
    if found is None:
        found = _from_torch()
    _cache = (now, found)
    return list(found)
