"""Which u8 x s8 dot-product instruction the integer GEMMs of vnni.py may use, decided once per
process before any kernel is compiled (the Numba cache folder is named after the choice).

- "avx512": VPDPBUSD on 512-bit registers (AVX-512 VNNI: Cascade Lake, Ice Lake and later
  Xeons, Zen 4 and later);
- "avx256": VPDPBUSD on 256-bit registers, in its VEX form (AVX-VNNI: Alder Lake and later
  client cores) or its EVEX form (AVX-512 VNNI with AVX-512 VL);
- "avx2": no VNNI, but AVX2's VPMADDWD (16-bit products summed in pairs, exact for bytes):
  Haswell and later, Zen 1 to 3;
- None: none of them; amchw.ir.fast keeps its exact float path.

The host must run the instruction and the target Numba compiles for must enable it. Numba
compiles for the host's CPU unless NUMBA_CPU_NAME names another, with the host's features
unless NUMBA_CPU_FEATURES lists its own ("+a,-b,..."; LLVM starts from the named CPU's
features and applies the list). A named CPU other than the host's gives None: LLVM may leave
512-bit vectors illegal there ("generic" does, with every AVX-512 feature on) and then aborts
the whole process on the instruction instead of raising an error. A host LLVM does not know is
also named "generic": None too.

AMCHW_VNNI picks: unset or "on" the best usable, "off" none, "avx512", "avx256" or "avx2" that
one where it is usable (none otherwise, with a warning that says why; so does a value that names
nothing)."""

import os
import warnings

from llvmlite import binding as _llvm
from numba import config as numba_config

ISAS = ("avx512", "avx256", "avx2")


def target_isas(host_features: dict, host_name: str, cpu_name: str | None,
                cpu_features: str | None) -> tuple[str, ...]:
    """The usable ISAs, best first (see the module docstring)."""
    name = host_name if cpu_name is None else cpu_name.strip()
    if name.lower() in ("host", "native"):
        name = host_name
    if name.lower() != host_name.lower() or name.lower() in ("", "generic"):
        return ()
    host = {k: bool(v) for k, v in host_features.items()}
    feats = dict(host)
    flags = [f.strip() for f in (cpu_features or "").split(",") if f.strip()]
    for f in flags:
        if f[0] in "+-":
            feats[f[1:]] = f[0] == "+"

    def has(f):  # the target enables it and the host runs it
        return feats.get(f, False) and host.get(f, False)

    out = []
    if has("avx512f") and has("avx512vnni") and "-evex512" not in flags:
        out.append("avx512")
    if has("avxvnni") or (has("avx512f") and has("avx512vnni") and has("avx512vl")):
        out.append("avx256")
    if has("avx2"):
        out.append("avx2")
    return tuple(out)


def refusal(usable: tuple[str, ...], request: str | None) -> str | None:
    """Why the AMCHW_VNNI setting cannot be followed (None where it can): a value that names
    nothing, or a form this CPU and Numba target cannot run."""
    req = (request or "on").strip().lower()
    if req in ("on", "1", "yes", "true", "auto", "off", "0", "no", "false") or req in usable:
        return None
    if req not in ISAS:
        return (f"AMCHW_VNNI={request!r} is not one of on, off, {', '.join(ISAS)}: "
                "the exact float path is used")
    return (f"AMCHW_VNNI={request!r}: this CPU and Numba target cannot run that form (usable: "
            f"{', '.join(usable) or 'none'}): the exact float path is used")


def choose(usable: tuple[str, ...], request: str | None, jit: bool = True) -> str | None:
    """The ISA to use given the usable ones and the AMCHW_VNNI setting."""
    req = (request or "on").strip().lower()
    if not jit or req in ("off", "0", "no", "false"):
        return None
    if req in ("on", "1", "yes", "true", "auto"):
        return usable[0] if usable else None
    return req if req in usable else None


def _host_isas() -> tuple[str, ...]:
    try:
        feats = dict(_llvm.get_host_cpu_features())
        name = _llvm.get_host_cpu_name()
    except Exception:  # pragma: no cover - llvmlite could not read the CPU features
        return ()
    return target_isas(feats, name, numba_config.CPU_NAME, numba_config.CPU_FEATURES)


USABLE = _host_isas()
ISA = choose(USABLE, os.environ.get("AMCHW_VNNI"), not numba_config.DISABLE_JIT)
if refusal(USABLE, os.environ.get("AMCHW_VNNI")):
    warnings.warn(str(refusal(USABLE, os.environ.get("AMCHW_VNNI"))), stacklevel=2)
