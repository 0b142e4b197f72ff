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
        return int8_isa(self.flags)

    @property
    def summary(self) -> str:
        """One line for a benchmark header: name, the int8 ISA and the cores this process may use."""
        shown = sorted(self.flags & {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "avx512_bf16"})
        return f"{self.name} | int8 ISA: {self.int8_isa} | flags: {' '.join(shown) or 'none'} | cores: {self.cores}"

    @property
    def key(self) -> str:
        """Identifies the CPU for cached measurements: a measurement made on another CPU does not apply."""
        return f"{self.name}|{self.int8_isa}|{self.cores}"


def int8_isa(flags: frozenset[str] | set[str], machine: str | None = None) -> str:
    """``arm64`` on ARM, ``avx512_vnni`` when ``flags`` have it, ``avx512`` with avx512f, else ``avx2``: the ONNX
    Runtime int8 target (and sentence-transformers' file suffix) of a CPU."""
    if (machine or platform.machine()).lower() in ("aarch64", "arm64", "armv8l", "armv8b"):
        return "arm64"
    if "avx512_vnni" in flags:
        return "avx512_vnni"
    if "avx512f" in flags:
        return "avx512"
    return "avx2"


def flags_of(cpuinfo: str) -> frozenset[str]:
    """The first ``flags`` (x86) or ``Features`` (ARM) line of a /proc/cpuinfo text, as a set."""
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


@functools.cache
def cpu_info() -> CpuInfo:
    """This machine's CPU, read from /proc/cpuinfo (Linux) or the platform module elsewhere."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        text = ""
    names = [v.strip() for k, _, v in (line.partition(":") for line in text.splitlines()) if k.strip() == "model name"]
    name, flags = (names[0] if names else name), flags_of(text)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return CpuInfo(name=name or "unknown CPU", flags=flags, cores=cores)
