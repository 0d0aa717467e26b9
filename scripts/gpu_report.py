#!/usr/bin/env python3
"""gpu_report.py — compiles clkv's kernel variants with the GPU vendors' compilers and reports
what each compiler says about registers, stack/scratch, spills, local memory and occupancy.
Run by scripts/gpu-report, which builds the variant lister (scripts/gpu_variants.c) and
passes its output on stdin. docs/GPU.md explains the figures.

  NVIDIA  clang-N (nvptx64--nvidiacl) + libclc, opt, llc -> PTX; ptxas -arch=sm_XX -v
  AMD     clang-N (amdgcn-amd-amdhsa -mcpu=gfxXXX) + libclc, opt, llc -> asm comments
  Intel   ocloc compile -device tgllp|dg2 -> zebin; its .ze_info (SIMD, GRF, scratch, SLM)

Exit status 1 when a kernel fails to build, or a decode-path kernel (the decode mat-vec, paged
attention) has a stack frame (NVIDIA) or scratch (AMD, Intel)."""
import argparse
import concurrent.futures as cf
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

CLC = "/usr/lib/clc"
NV_ARCHS = {"sm_80", "sm_90"}
AMD_CPUS = {"gfx1030", "gfx90a"}
INTEL_DEVS = {"tgllp", "dg2"}
DECODE_PATH = {"clkv_matvec:decode", "clkv_attn_paged:decode"}


def run(cmd, cwd=None):
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("%s failed (%d):\n%s" % (cmd[0], p.returncode, (p.stderr or p.stdout)[-3000:]))
    return p.stdout + p.stderr


def tool(names):
    for n in names:
        path = shutil.which(n)
        if path:
            return path
    for d in ("/usr/local/cuda/bin",):
        for n in names:
            if os.path.exists(os.path.join(d, n)):
                return os.path.join(d, n)
    return None


def libclc_llvm():
    """The LLVM major version of the installed libclc (Debian's libclc-N owns /usr/lib/clc;
    only one can be installed, and mesa-opencl-icd, the rusticl driver, pulls libclc-15).
    Its bitcode must be linked by the same or a newer LLVM."""
    try:
        out = subprocess.run(["dpkg-query", "-S", os.path.join(CLC, "amdgcn--amdhsa.bc")],
                             capture_output=True, text=True).stdout
        m = re.match(r"libclc-(\d+)", out)
        if m:
            return int(m.group(1))
    except OSError:
        pass
    return None


class Tools:
    def __init__(self):
        # The LLVM that matches libclc first, then any newer one, then the others.
        want = libclc_llvm()
        versions = sorted(range(14, 20), key=lambda v: (want is not None and v < want, v != want, -v))
        for v in versions:
            names = ["clang-%d" % v, "llvm-link-%d" % v, "opt-%d" % v, "llc-%d" % v]
            found = [tool([n]) for n in names]
            if all(found):
                break
        self.llvm = v if all(found) else None
        self.clang, self.link, self.opt, self.llc = found if all(found) else (None,) * 4
        self.ptxas = tool(["ptxas"])
        self.ocloc = tool(["ocloc"])


def defines(opts):
    return {k: int(v) for k, v in re.findall(r"-D(\w+)=(-?\d+)", opts)}


def wg_size(kernel, d):
    """The work-group size the kernel requires (its reqd_work_group_size), or None."""
    if kernel == "clkv_matvec":
        return d["KSPLIT"] * d["RG"]
    if kernel == "clkv_attn_paged":
        return d["ATT_WG"]
    if kernel == "clkv_attn_prefill":
        return d["TQ"]
    return None


def llvm_ir(t, tmp, src, opts, triple, cpu, kernels, libclc):
    """clang -> llvm-link with the needed libclc functions -> opt -O3, the kernels kept."""
    bc = os.path.join(tmp, "k.bc")
    cmd = [t.clang, "-x", "cl", "-cl-std=CL1.2", "-Dcl_clang_storage_class_specifiers",
           "-isystem", "/usr/include", "-include", "clc/clc.h", "-target", triple, "-O3",
           "-emit-llvm", "-c", "-w", src, "-o", bc] + opts.split()
    if cpu:
        cmd[cmd.index("-O3"):cmd.index("-O3")] = ["-mcpu=" + cpu, "-nogpulib"]
    run(cmd)
    run([t.link, "--only-needed", "--suppress-warnings", bc, os.path.join(CLC, libclc),
         "-o", os.path.join(tmp, "l.bc")])
    # LLVM 15's opt runs the new pass manager, which takes the passes as one pipeline.
    passes = ["-O3", "-internalize"] if t.llvm < 15 else ["-passes=internalize,default<O3>"]
    run([t.opt] + passes + ["-internalize-public-api-list=" + ",".join(kernels),
         os.path.join(tmp, "l.bc"), "-o", os.path.join(tmp, "o.bc")])
    return os.path.join(tmp, "o.bc")


def nvidia(t, job, src, tmp, ptx_cache):
    key = (job["file"], job["options"], tuple(job["kernels"]))
    if key not in ptx_cache:
        ir = llvm_ir(t, tmp, src, job["options"], "nvptx64--nvidiacl", None, job["kernels"],
                     "nvptx64--nvidiacl.bc")
        ptx = os.path.join(tmp, "k.ptx")
        run([t.llc, "-O3", "-mcpu=sm_80", ir, "-o", ptx])
        with open(ptx) as f:
            ptx_cache[key] = f.read()
    ptx = os.path.join(tmp, "in.ptx")
    with open(ptx, "w") as f:
        f.write(ptx_cache[key])
    out = run([t.ptxas, "-arch=" + job["target"], "-v", ptx, "-o", os.path.join(tmp, "k.cubin")])
    res = {}
    for name in job["kernels"]:
        m = re.search(r"entry function '%s'.*?(\d+) bytes stack frame, (\d+) bytes spill stores, "
                      r"(\d+) bytes spill loads\s*\n.*?Used (\d+) registers(?:, used \d+ barriers)?"
                      r"(?:, (\d+) bytes cumulative stack size)?(?:, (\d+) bytes smem)?" % name, out, re.S)
        if not m:
            raise RuntimeError("ptxas -v said nothing about %s:\n%s" % (name, out[-2000:]))
        regs = int(m.group(4))
        r = {"regs": regs, "stack": int(m.group(1)), "spill": int(m.group(2)) + int(m.group(3)),
             "shared": int(m.group(6) or 0)}
        wg = wg_size(name, defines(job["options"]))
        if wg:
            # 64K registers and 64 warps per SM (sm_80, sm_90); registers go by warp in
            # units of 256; at most 32 blocks; shared memory per SM 164 KiB / 228 KiB.
            warps_per_block = -(-wg // 32)
            per_warp = -(-regs * 32 // 256) * 256
            blocks = min(32, (65536 // per_warp) // warps_per_block)
            smem_sm = (164 if job["target"] == "sm_80" else 228) * 1024
            if r["shared"]:
                blocks = min(blocks, smem_sm // (r["shared"] + 1024))
            r["warps"] = min(64, blocks * warps_per_block)
            r["occupancy"] = "%d warps/SM" % r["warps"]
        res[name] = r
    return res


def amd(t, job, src, tmp):
    ir = llvm_ir(t, tmp, src, job["options"], "amdgcn-amd-amdhsa", job["target"], job["kernels"],
                 "amdgcn--amdhsa.bc")
    asm = os.path.join(tmp, "k.s")
    run([t.llc, "-O3", "-mtriple=amdgcn-amd-amdhsa", "-mcpu=" + job["target"], ir, "-o", asm])
    with open(asm) as f:
        text = f.read()
    res = {}
    max_waves = 16 if job["target"].startswith("gfx10") else 8
    for name in job["kernels"]:
        # llc writes each kernel's figures as comments after its .amdhsa_kernel descriptor
        start = text.find(".amdhsa_kernel %s\n" % name)
        if start < 0:
            raise RuntimeError("no kernel %s in the AMD assembly" % name)
        end = text.find(".amdhsa_kernel ", start + 1)
        seg = text[start:end if end > 0 else None]

        def num(key):
            m = re.search(r";\s*%s:\s*(\d+)" % key, seg)
            return int(m.group(1)) if m else 0
        occ = num("Occupancy")
        res[name] = {"regs": num("NumVgprs"), "stack": num("ScratchSize"),
                     "spill": 0, "shared": num("LDSByteSize"), "waves": occ,
                     "occupancy": "%d/%d waves" % (occ, max_waves)}
        # the spill counts are in the kernel descriptor's comments of newer LLVMs only;
        # LLVM 14/15: scratch with VGPRs at the limit is a spill
        if res[name]["stack"] and res[name]["regs"] >= 256:
            res[name]["spill"] = res[name]["stack"]
    return res


def ze_info(path):
    with open(path, "rb") as f:
        d = f.read()
    shoff = struct.unpack_from("<Q", d, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", d, 0x3A)
    secs = [struct.unpack_from("<IIQQQQIIQQ", d, shoff + i * shentsize) for i in range(shnum)]
    stro = secs[shstrndx][4]
    for s in secs:
        name = d[stro + s[0]:d.index(b"\0", stro + s[0])].decode()
        if name == ".ze_info":
            return d[s[4]:s[4] + s[5]].decode()
    raise RuntimeError("no .ze_info in %s" % path)


def intel(t, job, src, tmp):
    out = os.path.join(tmp, "out")
    os.makedirs(out, exist_ok=True)
    run([t.ocloc, "compile", "-q", "-file", src, "-device", job["target"], "-options",
         "-cl-std=CL1.2 -w " + job["options"], "-out_dir", out, "-output", "k",
         "-output_no_suffix", "--format", "zebin"])
    info = ze_info(os.path.join(out, "k"))
    res = {}
    info = info.split("\nkernels_misc_info:")[0]  # argument names only after this
    for block in re.split(r"\n  - name:\s+", info)[1:]:
        name = block.split()[0]
        if name not in job["kernels"]:
            continue

        def num(key):
            m = re.search(r"\b%s:\s+(\d+)" % key, block)
            return int(m.group(1)) if m else 0
        m = re.search(r"type:\s+scratch\s*\n\s*usage:\s+\w+\s*\n\s*size:\s+(\d+)", block)
        scratch = int(m.group(1)) if m else 0
        priv = re.search(r"type:\s+private_space.*?size:\s+(\d+)", block, re.S)
        simd = num("simd_size")
        res[name] = {"regs": num("grf_count"), "stack": scratch + (int(priv.group(1)) if priv else 0),
                     "spill": num("spill_size"), "shared": num("slm_size"), "simd": simd,
                     "occupancy": "SIMD%d" % simd}
    for name in job["kernels"]:
        if name not in res:
            raise RuntimeError("no zeinfo entry for %s" % name)
    return res


def compile_job(t, kdir, job, ptx_cache):
    tmp = tempfile.mkdtemp(prefix="clkv-gpu-")
    try:
        src = os.path.join(tmp, "prog.cl")
        with open(src, "w") as f:
            for part in ("contract.h", "common.cl", job["file"]):
                with open(os.path.join(kdir, part)) as g:
                    f.write(g.read() + "\n")
        tg = job["target"]
        if tg in NV_ARCHS:
            return nvidia(t, job, src, tmp, ptx_cache), None
        if tg in AMD_CPUS:
            return amd(t, job, src, tmp), None
        return intel(t, job, src, tmp), None
    except (RuntimeError, OSError) as e:
        return None, str(e)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kernels", required=True)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--targets", default="")
    a = ap.parse_args()
    t = Tools()
    want = set(a.targets.split(",")) if a.targets else NV_ARCHS | AMD_CPUS | INTEL_DEVS
    missing = []
    if not (t.clang and t.link and t.opt and t.llc and os.path.exists(os.path.join(CLC, "nvptx64--nvidiacl.bc"))):
        missing.append("clang/llvm/libclc of one LLVM version (NVIDIA and AMD): run scripts/setup")
        want -= NV_ARCHS | AMD_CPUS
    if not t.ptxas and want & NV_ARCHS:
        missing.append("ptxas (the CUDA toolkit): NVIDIA not reported")
        want -= NV_ARCHS
    if not t.ocloc:
        missing.append("ocloc (intel-opencl-icd): Intel not reported")
        want -= INTEL_DEVS
    jobs = []
    for line in sys.stdin:
        f = line.rstrip("\n").split("\t")
        if len(f) != 6 or f[0] not in want:
            continue
        jobs.append({"target": f[0], "file": f[1], "kernels": f[2].split(","), "phase": f[3],
                     "variant": f[4], "options": f[5]})
    ptx_cache = {}
    # sm_80 first: sm_90 jobs of the same options then reuse its PTX
    jobs.sort(key=lambda j: j["target"] != "sm_80")
    rows, failed, bad = [], 0, 0
    with cf.ThreadPoolExecutor(max_workers=max(1, a.jobs)) as ex:
        futs = [ex.submit(compile_job, t, a.kernels, j, ptx_cache) for j in jobs
                if j["target"] == "sm_80"]
        cf.wait(futs)
        futs += [ex.submit(compile_job, t, a.kernels, j, ptx_cache) for j in jobs
                 if j["target"] != "sm_80"]
        done = {id(j): f for j, f in zip([j for j in jobs if j["target"] == "sm_80"] +
                                          [j for j in jobs if j["target"] != "sm_80"], futs)}
        for j in jobs:
            res, err = done[id(j)].result()
            if err:
                failed += 1
                rows.append(dict(j, kernel=",".join(j["kernels"]), error=err, ok=False))
                continue
            for name, r in res.items():
                row = dict(j, kernel=name, **r)
                del row["kernels"]
                row["decode_path"] = "%s:%s" % (name, j["phase"]) in DECODE_PATH
                row["ok"] = not (row["decode_path"] and r["stack"] > 0)
                bad += not row["ok"]
                rows.append(row)
    if a.json:
        json.dump({"missing": missing, "failed_builds": failed, "decode_path_with_stack": bad,
                   "rows": rows}, sys.stdout, indent=1)
        print()
    else:
        print("%-7s %-17s %-7s %-48s %5s %6s %6s %6s  %s" % (
            "target", "kernel", "phase", "variant", "regs", "stack", "spill", "local", "occupancy"))
        for r in rows:
            if "error" in r:
                print("%-7s %-17s %-7s %-48s BUILD FAILED:\n%s" % (
                    r["target"], r["kernel"], r["phase"], r["variant"], r["error"]))
                continue
            print("%-7s %-17s %-7s %-48s %5d %6d %6d %6d  %s%s" % (
                r["target"], r["kernel"], r["phase"], r["variant"][:48], r["regs"], r["stack"],
                r["spill"], r["shared"], r.get("occupancy", "-"), "" if r["ok"] else "  << decode path uses stack/scratch"))
        print("regs: NVIDIA registers per thread, AMD VGPRs, Intel GRF count; stack: NVIDIA "
              "stack frame, AMD scratch, Intel scratch+private (bytes per work-item; Intel per thread)")
    for m in missing:
        print("gpu-report: not checked: " + m, file=sys.stderr)
    print("gpu-report: %d kernel builds, %d failed, %d decode-path kernels with stack/scratch" % (
        len(rows), failed, bad), file=sys.stderr)
    return 1 if failed or bad else 0


if __name__ == "__main__":
    sys.exit(main())
