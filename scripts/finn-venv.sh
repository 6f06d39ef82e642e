#!/usr/bin/env bash
# Build FINN (the finn-plus distribution, 1.6.1) in its own virtual environment, without CUDA
# wheels and without Vivado, for the CPU steps amchw's FINN suite runs: ConvertQONNXtoFINN,
# streamlining, conversion to HW layers, dataflow partition and FINN's own execution.
#
#   bash scripts/finn-venv.sh [VENV_DIR]        (default: .finn-venv in the repository root)
#
# Why not `pip install finn-plus`: finn-plus 1.6.1 pins brevitas 0.13.0, whose setuptools < 70
# pin cannot be resolved together with torch 2.13 (which needs setuptools >= 77), and an
# unpinned torch pulls several GB of CUDA wheels. So: finn-plus' declared requirements minus
# brevitas, torch pinned to the CPU build, then brevitas and finn-plus without dependencies,
# then psutil (imported by FINN, not declared). Idempotent: a finished venv is left as it is.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${1:-$root/.finn-venv}"
py="${PYTHON:-python3}"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import finn, qonnx, brevitas" 2>/dev/null \
        && [ -f "$venv/.amchw-finn-ok" ]; then
    echo "FINN venv ready: $venv"
    exit 0
fi
"$py" -m venv "$venv"
pip="$venv/bin/python -m pip"
$pip install -q --upgrade pip
$pip install -q "torch==2.13.0" \
    "bitstring>=4.3.1,<4.4" "click>=8.1.8,<9" "cmake>=4.0.3,<4.1" "mashumaro[yaml]>=3.15,<4" \
    "matplotlib>=3.10.9,<3.11" "mip==1.17.0" "numpy>=2.4.6,<2.5" "onnx==1.21.0" "onnx-ir>=0.1.15" \
    "onnx-passes>=0.4.0" "onnxoptimizer>=0.4.2,<0.5" "onnxruntime==1.25.1" "onnxscript>=0.7.0" \
    "pandas>=2.3.1,<2.4" "protobuf==5.29.6" "pybind11==3.0.1" "pydantic>2.0" "pyyaml>=6.0.2,<6.1" \
    "qonnx==1.0.0" "rich>=13.9.4,<14" "scikit-learn>=1.7.2,<1.8" "scipy>=1.17,<1.18" \
    "termcolor>=2.5,<3" "dependencies==2.0.1" packaging sympy typing-extensions unfoldNd psutil
$pip install -q --no-deps "brevitas==0.13.0" "finn-plus==1.6.1"
# smoke test: FINN's front end and CPU build steps import without Vivado
FINN_BUILD_DIR="$(mktemp -d)" "$venv/bin/python" - <<'PY'
import finn.xsi
finn.xsi.SimEngine = None
import finn.builder.build_dataflow_steps  # noqa: F401
from finn.transformation.qonnx.convert_qonnx_to_finn import ConvertQONNXtoFINN  # noqa: F401
from finn.core.onnx_exec import execute_onnx  # noqa: F401
print("FINN imports ok")
PY
touch "$venv/.amchw-finn-ok"
echo "FINN venv ready: $venv"
