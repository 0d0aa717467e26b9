# amd.profile — AMD GPUs (runtime/device.c: amd-gcn for 64-wide wavefronts, amd-rdna for
# 32-wide, amd when the driver does not report CL_DEVICE_WAVEFRONT_WIDTH_AMD).
# Comments say where a value comes from: "fact:" with its source, or "guess:".

[vendor AMD]
description = an AMD GPU whose wavefront width the driver does not report
# fact: clang compiles an OpenCL kernel without reqd_work_group_size or
# amdgpu_flat_work_group_size for at most 256 work-items ("the default for OpenCL is
# 1,256": LLVM AMDGPUUsage review D154210, clang AttrDocs), while the device reports 1024.
quirks = wg_limit_256
# guess: 64, GCN's wavefront; RDNA runs 64-wide wavefronts too (wave64 mode)
simd_width = 64
decode.ksplit = 64
decode.rg = 2
decode.rows = 2
decode.tt = 1
prefill.ksplit = 64
prefill.rg = 2
prefill.rows = 2
# scripts/gpu-report (docs/GPU.md): 2 tokens per work-item keep the prefill mat-vec's
# x[TT][4] and sum[ROWS][TT] in registers; at 4 clang+ptxas spill on sm_80/sm_90 and the
# AMD compiler spills at 256 VGPRs on gfx1030 (2026-11-30)
prefill.tt = 2
att_wg = 64
tq = 32
tk = 32

[arch amd-gcn]
description = AMD GCN or CDNA (64-wide wavefronts)
simd_width = 64          # fact: GCN and CDNA execute 64-wide wavefronts
local_mem_kib = 64       # fact: 64 KiB of LDS per compute unit (GCN architecture whitepaper)
# the built-in shape before profiles: one wavefront shares a row
decode.ksplit = 64
prefill.ksplit = 64

[arch amd-rdna]
description = AMD RDNA (32-wide wavefronts)
simd_width = 32          # fact: RDNA executes wave32 natively (the driver reports 32)
local_mem_kib = 64       # fact: 64 KiB of LDS per work-group (128 KiB per work-group processor)
# the built-in shape before profiles: one wave32 shares a row
decode.ksplit = 32
prefill.ksplit = 32
