# qualcomm.profile — Qualcomm Adreno GPUs (runtime/device.c: arch adreno).
# Comments say where a value comes from: "fact:" with its source, or "guess:".

[vendor Qualcomm]
description = a Qualcomm GPU

[arch adreno]
description = Qualcomm Adreno
# fact: llama.cpp's OpenCL backend, written with Qualcomm's engineers, uses a wave size of
# 64 on all Adreno GPUs (commit "opencl: use wave size of 64 for all Adreno GPUs");
# Adreno can also run 128-wide waves.
simd_width = 64
local_mem_kib = 32       # guess: what Adreno 6xx drivers report
quirks = none
# guess: one 64-wide wave shares a row, as on GCN. Not measured on an Adreno: run `clkv tune`.
decode.ksplit = 64
decode.rg = 2
decode.rows = 2
decode.tt = 1
prefill.ksplit = 64
prefill.rg = 2
prefill.rows = 2
prefill.tt = 4
att_wg = 64
tq = 32
tk = 32
