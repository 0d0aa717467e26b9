# arm.profile — Arm Mali GPUs (runtime/device.c names the family from the product name:
# Mali-T → mali-midgard; Mali-G31/G51/G52/G71/G72/G76 → mali-bifrost; other Mali-G and
# Immortalis → mali-valhall).
# Comments say where a value comes from: "fact:" with its source, or "guess:".

[vendor ARM]
description = an Arm Mali GPU
# fact: "Mali GPUs use global memory backed with caches in place of local or private
# memories ... Moving data from global to local or private memory typically does not
# improve performance" (Arm Mali GPU OpenCL Developer Guide, the Mali GPU memory model).
quirks = local_mem_in_global
# guess: with no fast local memory, no local-memory reduction: one work-item per row
# group, 32 row groups per work-group. Not measured on a Mali: run `clkv tune`.
decode.ksplit = 1
decode.rg = 32
decode.rows = 2
decode.tt = 1
prefill.ksplit = 1
prefill.rg = 32
prefill.rows = 2
prefill.tt = 4
att_wg = 16
tq = 16
tk = 32

[arch mali-midgard]
description = Arm Mali Midgard (Mali-T series)
simd_width = 0           # fact: Midgard is not warp-based; each thread issues 128-bit vector instructions
vector_width_float = 4   # fact: 128-bit vectors (Arm Mali OpenCL Developer Guide, "use vectors")

[arch mali-bifrost]
description = Arm Mali Bifrost (Mali-G31, G51, G52, G71, G72, G76)
# fact: Mali-G76 runs 8-wide warps (two 4-wide units; AnandTech on Mali-G77, 2019);
# guess: the same for G31, G51 and G52, released beside it.
simd_width = 8

[device Mali-G71]
# fact: Mali-G71 and G72 run 4-wide warps (AnandTech on Mali-G77, 2019)
simd_width = 4

[device Mali-G72]
simd_width = 4           # fact: as Mali-G71

[arch mali-valhall]
description = Arm Mali Valhall and later (Mali-G57 to G720, Immortalis)
simd_width = 16          # fact: "Valhall uses 16-wide warps" (Arm, The Valhall shader core)
