# nvidia.profile — NVIDIA GPUs, with one architecture section per compute-capability family
# (runtime/device.c reads CL_DEVICE_COMPUTE_CAPABILITY_MAJOR/MINOR_NV; "nvidia" when the
# driver lacks cl_nv_device_attribute_query or the family is newer than its table).
# Comments say where a value comes from: "fact:" with its source, or "guess:".

[vendor NVIDIA]
description = an NVIDIA GPU
# fact: every NVIDIA GPU runs 32-wide warps (CUDA C Programming Guide, "warp size 32");
# used when the driver does not answer CL_DEVICE_WARP_SIZE_NV.
simd_width = 32
# fact: NVIDIA's OpenCL driver reports 48 KiB of local memory per work-group (the static
# shared-memory limit of CUDA) on every family from Kepler on.
local_mem_kib = 48
# NVIDIA's OpenCL does not expose cl_khr_fp16: the portable half path is used, no quirk.
quirks = none
# the built-in shape before profiles: one warp shares a row
decode.ksplit = 32
decode.rg = 2
decode.rows = 2
decode.tt = 1
prefill.ksplit = 32
prefill.rg = 2
prefill.rows = 2
# scripts/gpu-report (docs/GPU.md): 2 tokens per work-item keep the prefill mat-vec's
# x[TT][4] and sum[ROWS][TT] in registers; at 4 clang+ptxas spill on sm_80/sm_90 and the
# AMD compiler spills at 256 VGPRs on gfx1030 (2026-11-30)
prefill.tt = 2
att_wg = 64
tq = 32
tk = 32

# The families: no measured differences yet (run `clkv tune` and put what wins here).
[arch nvidia-kepler]
description = NVIDIA Kepler (compute capability 3.x)

[arch nvidia-maxwell]
description = NVIDIA Maxwell (compute capability 5.x)

[arch nvidia-pascal]
description = NVIDIA Pascal (compute capability 6.x)

[arch nvidia-volta]
description = NVIDIA Volta (compute capability 7.0, 7.2)

[arch nvidia-turing]
description = NVIDIA Turing (compute capability 7.5)

[arch nvidia-ampere]
description = NVIDIA Ampere (compute capability 8.0, 8.6, 8.7)

[arch nvidia-ada]
description = NVIDIA Ada Lovelace (compute capability 8.9)

[arch nvidia-hopper]
description = NVIDIA Hopper (compute capability 9.0)

[arch nvidia-blackwell]
description = NVIDIA Blackwell (compute capability 10.x, 12.x)
