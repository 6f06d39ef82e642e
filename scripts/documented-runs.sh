#!/usr/bin/env bash
# The training runs documented in docs/training.md ("Documented runs"): data, training and
# evaluation of cnn-slim (30 dB), ee-baseline (rml2016b), vgg10 (rml2018) and vtcnn2 (rml2016 at
# RadioML 2016.10A's size), each logged with its wall time under runs/doc/, and "warmup"
# (ee-baseline with a float warm-up against QAT from scratch). Rerunning resumes unfinished trainings.
# Usage: bash scripts/documented-runs.sh [run ...] (default: the four models). Each training
# uses the torch threads it is given (OMP_NUM_THREADS=1 to run two side by side on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
AMCHW=${AMCHW:-.venv/bin/amchw}
D=runs/doc
mkdir -p "$D"
timed() {  # name, command...: run, log stdout+stderr and the wall time
  local name=$1; shift
  local t0=$SECONDS
  "$@" > "$D/$name.log" 2>&1
  echo "wall_s $((SECONDS - t0))" >> "$D/$name.log"
}
synth() {  # file, profile, per-class-snr, [snrs]
  [ -f "$1" ] || $AMCHW data synth --profile "$2" --per-class-snr "$3" ${4:+--snrs "$4"} \
      --seed 0 -o "$1" > /dev/null 2>&1
}
run_one() {
  case $1 in
  cnn-slim)
    synth $D/rml2016-1024-30dB.h5 rml2016-1024 3000 30
    timed cnn-slim.train $AMCHW train --model cnn-slim --data $D/rml2016-1024-30dB.h5 \
        --epochs 30 --patience 5 -o $D/cnn-slim.pt
    # the same file, every epoch after the first on fresh frames of its recipe
    timed cnn-slim-stream.train $AMCHW train --model cnn-slim --data $D/rml2016-1024-30dB.h5 \
        --stream --epochs 30 --patience 6 -o $D/cnn-slim-stream.pt
    timed cnn-slim-stream.eval $AMCHW eval $D/cnn-slim-stream.pt --data $D/rml2016-1024-30dB.h5 \
        --json ;;
  ee-baseline)
    synth $D/rml2016b-300.h5 rml2016b 300
    timed ee-baseline.train $AMCHW train --model ee-baseline --data $D/rml2016b-300.h5 \
        --epochs 30 --patience 5 -o $D/ee-baseline.pt ;;
  vgg10)
    synth $D/rml2018-100.h5 rml2018 100
    timed vgg10.train $AMCHW train --model vgg10 --data $D/rml2018-100.h5 \
        --epochs 15 --patience 4 -o $D/vgg10.pt ;;
  vtcnn2)
    synth $D/rml2016-1000.h5 rml2016 1000
    timed vtcnn2.train $AMCHW train --model vtcnn2 --data $D/rml2016-1000.h5 \
        --epochs 8 --patience 3 -o $D/vtcnn2.pt ;;
  warmup)   # float warm-up against QAT from scratch: same data, epochs and seed
    synth $D/rml2016b-300.h5 rml2016b 300
    timed warmup-scratch.train $AMCHW train --model ee-baseline --data $D/rml2016b-300.h5 \
        --epochs 8 --patience 8 -o $D/warmup-scratch.pt
    timed warmup-scratch.eval $AMCHW eval $D/warmup-scratch.pt --data $D/rml2016b-300.h5 --json
    timed warmup-float.train $AMCHW train --model ee-baseline --data $D/rml2016b-300.h5 \
        --epochs 8 --patience 8 --float-epochs 3 -o $D/warmup-float.pt
    timed warmup-float.eval $AMCHW eval $D/warmup-float.pt --data $D/rml2016b-300.h5 --json
    return ;;
  gru-cnn)  # the GRU-CNN seed's Tables 2-4: a report recipe (about an hour on 2 cores)
    timed gru-cnn.report $AMCHW report docs/recipes/gru-cnn.toml -o $D/gru-report
    return ;;
  seeds)    # every seed's claims on learned networks: a report recipe (about 100 minutes)
    timed seeds.report $AMCHW report docs/recipes/seeds.toml -o $D/seeds-report
    return ;;
  *) echo "unknown run $1" >&2; exit 2 ;;
  esac
  local data
  data=$(ls $D/*.h5 | grep -F "$(case $1 in cnn-slim) echo 1024-30dB;; ee-baseline) echo 2016b;;
      vgg10) echo 2018;; vtcnn2) echo 2016-1000;; esac)")
  timed "$1.eval" $AMCHW eval $D/$1.pt --data "$data" --json
}
for m in "${@:-cnn-slim ee-baseline vgg10 vtcnn2}"; do
  for one in $m; do run_one "$one"; done
done
