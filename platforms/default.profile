# default.profile — the last level of the lookup (device → architecture → vendor → default)
# and the architectures that belong to no vendor file. Every value here must work on any
# OpenCL device. Comments say where a value comes from: "fact:" with its source, or "guess:".

[default]
description = an OpenCL device without a more specific profile
simd_width = 0           # unknown: no subgroup width is assumed
quirks = none
# Kernel tunables, all of them (runtime/tunables_table.h, docs/TUNING.md): the shapes clkv
# used for every GPU before profiles existed. 32 work-items share a row and reduce it in
# local memory (guess: a warp on NVIDIA, half a wavefront on GCN, unknown elsewhere).
decode.ksplit = 32
decode.rg = 2
decode.rows = 2
decode.tt = 1
decode.dot = 1           # the float dot: GPUs without a fast int8 dot (docs/TUNING.md)
prefill.ksplit = 32
prefill.rg = 2
prefill.rows = 2
prefill.tt = 4
prefill.dot = 1
prefill.form = 1         # the dot per row and token (form 2 is for CPUs: pocl.profile)
att_wg = 64
tq = 32
tk = 32
# guess: off; a GPU's launches are cheap, and spinning work-groups are unmeasured there
decode.path = 1
decode.groups = 4096     # where decode.path 2 is chosen: one work-group per compute unit

[arch cpu]
# A CPU device of a driver other than PoCL (Intel's or AMD's CPU runtime). Complete on
# purpose: the vendor section of the same vendor describes its GPUs and must not apply.
description = a CPU device of a driver other than PoCL
simd_width = 0           # fact: CPU runtimes vectorize work-items; no fixed subgroup width
quirks = none            # the driver reports the local memory type itself
# guess: the PoCL CPU shapes (one work-item per row group, no local-memory reduction)
decode.ksplit = 1
decode.rg = 4
decode.rows = 2
decode.tt = 1
decode.dot = 1           # guess: the float dot, as measured on PoCL (pocl.profile)
prefill.ksplit = 1
prefill.rg = 4
prefill.rows = 2
prefill.tt = 8
prefill.dot = 1
prefill.form = 1         # guess: as default until measured on a CPU runtime other than PoCL
att_wg = 8
tq = 16
tk = 32
# guess: off until measured on a CPU runtime other than PoCL
decode.path = 1
decode.groups = 64       # guess: one work-group per core, as on PoCL (pocl.profile)
