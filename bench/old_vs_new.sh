#!/bin/bash
# Two builds of occ side by side (e.g. the last landed one and a change), interleaved:
# native and occlumency 93M, threads 1 and 2, two rounds; each figure is occ run --repeat 5s median.
# Prints one line per model, mode and thread count; docs/benchmarks.md ("Typed engine vs ...") reads it.
OLD=${OLD:?path of the old occ}; NEW=${NEW:?path of the new occ}; ZOO=${ZOO:-/work/zoo}
# packs: $PO (old binary) and $PN (new binary), one .occ per model, made by each binary from $ZOO/M.onnx
PO=${PO:?}; PN=${PN:?}
for m in alexnet googlenet mobilenet_v2 resnet50 squeezenet1_0 vgg16; do
 for mode in "native" "occlumency --budget 93M"; do
  for t in 1 2; do
   r=""
   for round in 1 2; do
    for side in old new; do
      B=$OLD; P=$PO; [ $side = new ] && B=$NEW && P=$PN
      v=$($B run $P/$m.occ --input $ZOO/$m.input.bin --threads $t --mode $mode --repeat 5 --json 2>/dev/null | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["median_ms"])')
      r="$r $side=$v"
    done
   done
   echo "$m | $mode | t$t |$r"
  done
 done
done
