"""How the stream-x kernels are compiled: two numba decorators and the reasons for their flags.

Array arithmetic uses ``reassoc``/``contract`` so that dot products and the L1 norm vectorize:
float32 sums then run in a different order than torch's, which is the (tiny, bounded) difference
between this path and the autograd path. Scalars that decide the step (delta, the bound) are
computed without fast-math, in float64, as the autograd path does.

**Cached on disk, and bit-exact across processes.** Compiling the kernels costs a process 1.6 s
before its first action and 8.3 s more before its first update (measured on the development
machine); a learner restarted after a crash, and every actor, would pay that each time. Loaded
from the disk cache (``kernel_cache_dir``) they take 0.7 s and 0.02 s. Two precautions:

- Every call between kernels is inlined by numba (``inline="always"``). Without it, a process
  that compiled the kernels itself ran other float32 code than one that loaded them from the
  cache: LLVM optimizes a caller together with its callees, under fast-math, differently in the
  two cases (measured: the weights after 3,000 Hopper updates differed in the last bits between a
  fresh and a cached process, and were identical without fast-math). With every callee inlined
  into its caller's own code, fresh and cached processes compute the same bits, so
  ``rill train --resume`` stays bit-exact whichever process compiled
  (``tests/learners/test_kernel_cache.py``).
- numba re-checks a cached function only against its own file; with callees inlined from other
  files, an edited callee would leave stale code. The cache directory is therefore named by a
  digest of every kernel source file and the numba version: any change starts a new cache.

``RILL_KERNEL_CACHE`` sets the cache's parent directory (default ``~/.cache/rill/kernels``);
``off`` compiles in every process, as does a directory that cannot be written. Every process that
uses a cache directory marks it used (its modification time); caches of other kernel versions
unused for ``PRUNE_AFTER_DAYS`` are deleted then, so upgrades do not pile up compiled code
(about 1.4 MB a version).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numba
from numba import njit

FASTMATH = {"reassoc", "contract", "nsz"}
KERNEL_SOURCES = Path(__file__).resolve().parent
PRUNE_AFTER_DAYS = 14.0
_CACHE_NAME = re.compile(r"[0-9a-f]{20}")


def kernel_cache_dir() -> Path | None:
    """Where the compiled kernels are kept: ``<RILL_KERNEL_CACHE>/<digest of the kernel sources and
    numba's version>``, created if needed; None when caching is off or the place is not writable."""
    base = os.environ.get("RILL_KERNEL_CACHE", "")
    if base.lower() == "off":
        return None
    digest = hashlib.sha256(numba.__version__.encode())
    for source in sorted(KERNEL_SOURCES.glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    path = Path(base or Path.home() / ".cache" / "rill" / "kernels") / digest.hexdigest()[:20]
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()  # also marks the directory used now
    except OSError:
        return None
    prune_kernel_caches(path.parent, keep=path)
    return path


def prune_kernel_caches(base: Path, keep: Path, older_than_days: float = PRUNE_AFTER_DAYS) -> list[Path]:
    """Delete the kernel caches in ``base`` (directories named like ``kernel_cache_dir``'s, nothing
    else) other than ``keep`` that no process has used for ``older_than_days``; returns them. A
    cache that cannot be deleted is left, silently: a later process tries again."""
    cutoff, removed = time.time() - older_than_days * 86400.0, []
    try:
        entries = list(base.iterdir())
    except OSError:
        return removed
    for entry in entries:
        if entry == keep or not _CACHE_NAME.fullmatch(entry.name):
            continue
        try:
            if entry.is_dir() and not entry.is_symlink() and entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry)
                removed.append(entry)
        except OSError:
            continue
    return removed


CACHE_DIR = kernel_cache_dir()


def _kernel(**flags) -> Callable:
    """numba's ``njit`` with ``flags``, every call inlined, cached in ``CACHE_DIR`` (when there is
    one; numba reads its cache directory when a function is decorated, so it is set just then)."""
    decorate = njit(cache=CACHE_DIR is not None, inline="always", nogil=True, **flags)

    def apply(fn: Callable) -> Callable:
        if CACHE_DIR is None:
            return decorate(fn)
        before = numba.config.CACHE_DIR
        numba.config.CACHE_DIR = str(CACHE_DIR)
        try:
            return decorate(fn)
        finally:
            numba.config.CACHE_DIR = before

    return apply


fast_jit = _kernel(fastmath=FASTMATH)
exact_jit = _kernel()  # strict IEEE: no reassociation, no fused multiply-add
