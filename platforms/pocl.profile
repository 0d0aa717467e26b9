# pocl.profile — devices driven by PoCL (Portable Computing Language, portablecl.org).
# Comments say where a value comes from: "fact:" with its source, or "guess:".

[vendor PoCL]
# PoCL's non-CPU devices (CUDA, Level Zero, remote) keep the [default] GPU values.
description = a device driven by PoCL

[arch pocl-cpu]
description = PoCL's CPU device (LLVM vectorizes the work-items of a work-group)
simd_width = 0           # fact: PoCL's CPU driver has no fixed subgroup width
# fact: PoCL's CPU device reports CL_DEVICE_LOCAL_MEM_TYPE = CL_GLOBAL (`clkv devices`
# shows "emulated in global"): local memory is ordinary RAM, a reduction in it only costs.
# fact: PoCL 3.1 emulates vload_half in software on CPUs (~25 scalar instructions per value,
# no vcvtph2ps; /work/shared/docs/PERF-NOTES.md): reading the fp16 block scales with integer
# bit operations made SmolLM2 Q4_1 decode faster (docs/TUNING.md has the figures).
quirks = local_mem_in_global soft_half
# fact: measured on PoCL 3.1 (docs/TUNING.md, docs/BENCH.md): one work-item per row group
# and no local-memory reduction; (with the float dot) 4 rows per work-item share the loads of x and the fused
# norm (SmolLM2-135M Q4_1 decode 29.5 -> 35-37 tok/s against rows 2); 16 prefill tokens
# per work-item reuse each dequantized block (prefill of 128: 76 -> 97 tok/s against rows 2,
# tt 8). Both agree with what `clkv tune` chose on this machine.
decode.ksplit = 1
# fact: measured on PoCL 3.1 (2026-11-30, one worker thread pinned to a core, SmolLM2-135M
# Q4_1, docs/TUNING.md "int8 activations"): x quantized to 8 bits once per work-group and
# x86's pmaddubsw (decode.dot 3), each work-item reading its rows one after another (one
# stream of weights for the prefetchers): decode 50.5 -> 68.7 tok/s against the float dot,
# the Q8_0 output head 6.0 -> 1.6 ms; 8 rows x 4 work-items share one quantized x (rows 4,
# rg 4: 57 us for a 1536x576 Q4_1 mat-vec against 48 at rows 8). Perplexity +0.17%.
decode.rg = 4
decode.rows = 8
decode.tt = 1
decode.dot = 3
prefill.ksplit = 1
# fact: measured on PoCL 3.1 (docs/TUNING.md "int8 tiles", 2026-11-30, one PoCL thread pinned
# to a core, SmolLM2-135M Q4_1 pp512): the outer product in int8 tiles with VNNI's vpdpbusd
# (prefill.dot 3 under form 2, where the host CPU has AVX512-VNNI) 640 tok/s at rg/rows/tt
# 16/8/32 against 177 for the float outer product at 8/8/32 (162 at 16/8/32). The
# work-group quantizes its token tile once, so 16 x 8 rows share it (8/8/32 563, 32/8/32 633,
# 16/6/32 617, 16/10/32 641, 16/8/48 571, 8/8/16 486, 4/8/32 434). Perplexity +0.35%. With
# the outer product's own epilogue: 16/8/32 672, 32/8/32 705, but the float form (the other
# types, decode.dot 1) collapses at rg 32 (Gemma 3 Q4_K_M 254 -> 86), so rg 16.
prefill.rg = 16
prefill.rows = 8
prefill.tt = 32
prefill.dot = 3
# fact: the outer-product prefill (prefill.form 2, docs/TUNING.md, 2026-11-30): SmolLM2
# Q4_1 pp512 on one PoCL thread 118 -> 185 tok/s at rg/rows/tt 8/8/16 with float8 token
# vectors (4/4/16 160, 4/8/16 175, 8/8/24 181); with float16 ones (TT % 16 == 0) the
# 518-token prompt took 1.40-1.49 CPU s at 8/8/32 against 1.95-1.98 (float8, 8/8/16),
# 8/8/16 1.55, 16/8/32 1.46, 8/12/32 1.48, 8/8/48 1.64; 8 x 8 rows share the x tile.
prefill.form = 2
att_wg = 8
tq = 16
tk = 32
# fact: measured on PoCL 3.1 (docs/TUNING.md "Fused decode", 2026-11-30 19:50Z, quiet 2-core
# VM, SmolLM2 Q4_1 with the int8 dot): the fused step (2) with one work-group decodes 112-117
# tok/s against 104 for five launches a layer (one PoCL thread: 121 against 70). With the
# float dot it was no faster (72-75 against 73-75, 16:51Z).
decode.path = 2
# fact: one work-group per core, each taking its own contiguous range of rows first
# (docs/TUNING.md "Fused decode", 2026-12-01, quiet 2-core VM): SmolLM2 Q4_1 tg128 257-275
# tok/s against 170-179 for one work-group, Gemma 3 270M 98-118 against 67-72. Each context still measures one
# work-group against them as it decodes and keeps the faster (another process on the cores).
decode.groups = 64
