# intel.profile — Intel GPUs (runtime/device.c: the IP version of
# cl_intel_device_attribute_query gives intel-gen9, intel-gen11 or intel-xe for 12 and
# later; without it "Xe"/"Arc" in the name gives intel-xe, anything else intel-gen).
# Intel's CPU runtime is arch cpu (default.profile), not this vendor section.
# Comments say where a value comes from: "fact:" with its source, or "guess:".

[vendor Intel]
description = an Intel GPU
# fact: Intel GPUs run subgroups of 8, 16 or 32 work-items
# (cl_intel_required_subgroup_size); runtime/device.c prefers 16 when the driver lists it.
simd_width = 16
# fact: 64 KiB of shared local memory per sub-slice (Intel Gen9 compute architecture; the
# driver reports 64 KiB per work-group on Gen9 to Xe-LP)
local_mem_kib = 64
quirks = none
# the built-in shape before profiles: one 16-wide subgroup shares a row
decode.ksplit = 16
decode.rg = 2
decode.rows = 2
decode.tt = 1
prefill.ksplit = 16
prefill.rg = 2
prefill.rows = 2
# scripts/gpu-report (docs/GPU.md): 2 tokens per work-item keep the prefill mat-vec's
# x[TT][4] and sum[ROWS][TT] in registers; at 4 clang+ptxas spill on sm_80/sm_90 and the
# AMD compiler spills at 256 VGPRs on gfx1030 (2026-11-30)
prefill.tt = 2
att_wg = 64
tq = 32
tk = 32

[arch intel-gen9]
description = Intel Gen9 (Skylake to Comet Lake: HD and UHD Graphics 5xx/6xx)

[arch intel-gen11]
description = Intel Gen11 (Ice Lake: Iris Plus Graphics)

[arch intel-gen]
description = an Intel GPU older than Gen9, or one whose driver lacks the IP version query

[arch intel-xe]
description = Intel Xe (Gen12 and later: Iris Xe, Arc, Data Center GPU; Xe2)
