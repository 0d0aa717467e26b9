# rusticl.profile — Mesa's rusticl (OpenCL 3.0 in Rust over Gallium), on llvmpipe: a second,
# independent OpenCL implementation for CPUs, shown only with RUSTICL_ENABLE=llvmpipe.
# Comments say where a value comes from: "fact:" with its source, or "guess:".

[arch rusticl-llvmpipe]
description = Mesa's rusticl on llvmpipe (a work-group runs on one thread, 8 lanes a vector)
simd_width = 0           # fact: no subgroups reported (Mesa 22.3)
quirks = none            # fact: it reports CL_DEVICE_LOCAL_MEM_TYPE = CL_GLOBAL itself
# fact: `clkv tune --budget 300` on Mesa 22.3.6, LLVM 15 (2-core EPYC VM, wall clock: the
# events are wrong here, docs/TUNING.md), SmolLM2-135M Q4_1. 16 work-items share a row, so
# the 8 lanes of a vector read adjacent blocks of one row instead of 8 rows a row apart:
# decode mat-vec 91.5 -> 12.8 ms (68.6 ms at the cpu section's rg=4 rows=2), prefill 4.0 ->
# 2.5 s. One token per work-item in prefill: llvmpipe keeps the TT accumulators of each lane
# in memory, and tt=8 took 22.9 s where tt=1 took 4.5 s.
decode.ksplit = 16
decode.rg = 8
decode.rows = 2
decode.tt = 1
prefill.ksplit = 16
prefill.rg = 8
prefill.rows = 2
prefill.tt = 1
att_wg = 8               # guess: 16 timed within the noise (2.52 against 2.60 ms)
tq = 32                  # fact: tuned, 108 ms (tq=16: 140 ms)
tk = 32
decode.dot = 1           # guess: the float dot (int8 activations not timed on llvmpipe)
prefill.dot = 1
prefill.form = 1         # guess: the dot per token (the outer product is for PoCL's CPU device; not timed)
decode.path = 1          # fact: the fused step gives wrong logits on llvmpipe (docs/TUNING.md, rusticl)
decode.groups = 64       # guess: one work-group per llvmpipe thread, where decode.path 2 is chosen
