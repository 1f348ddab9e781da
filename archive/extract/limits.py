"""Hard limits set inside a worker process, so the kernel enforces them even where a
library's native code never returns to Python."""

from __future__ import annotations

import resource
import signal


def apply_memory_limit(memory_bytes: int) -> None:
    """RLIMIT_AS: past it, allocations fail (MemoryError in Python, a crash in C code)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = memory_bytes if hard == resource.RLIM_INFINITY else min(memory_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def apply_cpu_limit(seconds: float) -> None:
    """RLIMIT_CPU for the next task: a second guard behind the parent's wall-clock kill.

    The limit counts the process's whole life, so it is moved on before each task.
    """
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = usage.ru_utime + usage.ru_stime
    soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    budget = int(used + 2 * seconds) + 1
    if hard != resource.RLIM_INFINITY:
        budget = min(budget, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (budget, hard))


def ignore_interrupts() -> None:
    """Ctrl-C goes to the whole process group; the parent decides what stops."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
