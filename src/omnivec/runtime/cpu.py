"""What this machine's CPU is: its name and the instruction sets int8 kernels use. The int8 export for this CPU
(``onnx-int8``), the benchmarks' headers and the cache key of ``backend="auto"`` all read it here."""

from __future__ import annotations

import functools
import os
import platform
from dataclasses import dataclass

# The instruction sets that decide int8 speed, best first (ONNX Runtime's dynamic int8 configs carry these names).
INT8_ISAS = ("avx512_vnni", "avx512", "avx2", "arm64")


@dataclass(frozen=True)
class CpuInfo:
    """The CPU's model name, the int8-relevant flags it has, and how many cores the process may use."""

    name: str
    flags: frozenset[str]
    cores: int

    @property
    def int8_isa(self) -> str:
        """The ISA name of the int8 export for this CPU: ``avx512_vnni``, ``avx512``, ``avx2`` or ``arm64``."""
        if platform.machine().lower() in ("arm64", "aarch64"):
            return "arm64"
        if "avx512_vnni" in self.flags or "avx512vnni" in self.flags:
            return "avx512_vnni"
        if "avx512f" in self.flags:
            return "avx512"
        return "avx2"

    @property
    def summary(self) -> str:
        """One line for a benchmark header: name, the int8 ISA and the cores this process may use."""
        shown = sorted(self.flags & {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "avx512_bf16"})
        return f"{self.name} | int8 ISA: {self.int8_isa} | flags: {' '.join(shown) or 'none'} | cores: {self.cores}"

    @property
    def key(self) -> str:
        """Identifies the CPU for cached measurements: a measurement made on another CPU does not apply."""
        return f"{self.name}|{self.int8_isa}|{self.cores}"


@functools.cache
def cpu_info() -> CpuInfo:
    """This machine's CPU, read from /proc/cpuinfo (Linux) or the platform module elsewhere."""
    name, flags = platform.processor() or platform.machine(), frozenset[str]()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and name in ("", platform.machine(), platform.processor()):
                    name = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = frozenset(value.split())
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return CpuInfo(name=name or "unknown CPU", flags=flags, cores=cores)
