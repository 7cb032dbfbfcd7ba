/* igrc compile --target cuda as a user runs it: the executable it writes
 * still runs on the CPU (info) and carries the CUDA image as the symbol
 * igrc_cuda_image (with igrc_cuda_image_size), found here through the
 * ELF symbol table and parsed with cuda_image_parse: arch, TF32 flag,
 * kernel count equal to the compile's, non-empty PTX holding every
 * kernel, and an ELF CUBIN; neither it nor igrc needs libcuda. --emit cuda and --dump-dir write the CUDA C
 * and PTX; the NVRTC cache makes the second compile skip NVRTC; bad
 * options exit 2 naming the problem. */
#define _POSIX_C_SOURCE 200809L /* setenv */

#include <criterion/criterion.h>
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/cuda/cuda_abi.h"
#include "tests/common/scratch.h"
#include "tests/common/spawn.h"

#define MLP "models/mnist_mlp_standard.json"

static void setup(void) {
    scratch_setup();
    setenv("IGRC_CACHE_DIR", in_dir("cache"), 1);
}

TestSuite(cuda_driver, .init = setup, .fini = scratch_teardown, .timeout = 900);

#define igrc(...) spawn_v(igrc_bin(), (const char *const[]){__VA_ARGS__, NULL})

/* The bytes of symbol `name` in the ELF file image f (n bytes): its
 * section's file offset plus the symbol's offset into the section. */
static const void *elf_symbol(const char *f, size_t n, const char *name, size_t *size) {
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)f;
    cr_assert(n > sizeof *eh && !memcmp(eh->e_ident, ELFMAG, SELFMAG), "not an ELF file");
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(f + eh->e_shoff);
    for (int i = 0; i < eh->e_shnum; i++) {
        if (sh[i].sh_type != SHT_SYMTAB) continue;
        const Elf64_Sym *sym = (const Elf64_Sym *)(f + sh[i].sh_offset);
        const char *str = f + sh[sh[i].sh_link].sh_offset;
        for (size_t k = 0; k < sh[i].sh_size / sizeof *sym; k++) {
            if (strcmp(str + sym[k].st_name, name) || sym[k].st_shndx >= eh->e_shnum) continue;
            const Elf64_Shdr *sec = &sh[sym[k].st_shndx];
            size_t off = sec->sh_offset + (sym[k].st_value - sec->sh_addr);
            cr_assert(off + sym[k].st_size <= n, "%s lies outside the file", name);
            *size = sym[k].st_size;
            return f + off;
        }
    }
    return NULL;
}

/* Whether the ELF file image f lists a DT_NEEDED library starting with
 * prefix. */
static bool elf_needs(const char *f, const char *prefix) {
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)f;
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(f + eh->e_shoff);
    for (int i = 0; i < eh->e_shnum; i++) {
        if (sh[i].sh_type != SHT_DYNAMIC) continue;
        const Elf64_Dyn *dyn = (const Elf64_Dyn *)(f + sh[i].sh_offset);
        const char *str = f + sh[sh[i].sh_link].sh_offset;
        for (size_t k = 0; k < sh[i].sh_size / sizeof *dyn && dyn[k].d_tag != DT_NULL; k++)
            if (dyn[k].d_tag == DT_NEEDED && !strncmp(str + dyn[k].d_un.d_val, prefix, strlen(prefix)))
                return true;
    }
    return false;
}

/* The executable's image, parsed (data stays valid while *file lives). */
static void read_image(const char *exe, char **file, CudaImage *img) {
    size_t n, sz_size = 0, data_size = 0;
    *file = slurp(exe, &n);
    const int64_t *sz = elf_symbol(*file, n, "igrc_cuda_image_size", &sz_size);
    const char *data = elf_symbol(*file, n, "igrc_cuda_image", &data_size);
    cr_assert(sz && data, "%s lacks igrc_cuda_image / igrc_cuda_image_size", exe);
    cr_assert_eq(sz_size, 8);
    cr_assert_leq((size_t)*sz, data_size, "image size %lld beyond its symbol (%zu)", (long long)*sz, data_size);
    char err[256];
    cr_assert(cuda_image_parse(data, (size_t)*sz, img, err, sizeof err), "%s", err);
}

static int kernels_reported(const char *err) {
    const char *p = strstr(err, " kernels (");
    cr_assert(p, "no kernel count in: %s", err);
    while (p > err && p[-1] != ' ') p--;
    return atoi(p);
}

Test(cuda_driver, executable_carries_the_image) {
    const char *exe = in_dir("mlp"), *dir = in_dir("dumps");
    /* one NVRTC compile (seconds under the sanitizers) also writes the
     * dumps that emit_cuda_and_dumps used to compile again for */
    Result r = igrc("compile", src_path(MLP), "--batch", "16", "--target", "cuda", "-o", exe, "--time-passes",
                    "--dump-dir", dir);
    cr_assert_eq(r.rc, 0, "exit %d: %s", r.rc, r.err);
    cr_expect(strstr(r.err, "NVRTC") && strstr(r.err, "cache miss"), "--time-passes: %s", r.err);
    int nk = kernels_reported(r.err);
    result_free(&r);
    /* --dump-dir: the CUDA C and the PTX */
    char p[600];
    snprintf(p, sizeof p, "%s/cuda/module.cu", dir);
    char *t = slurp(p, NULL);
    cr_expect(strstr(t, "igrc_k0("), "%s", p);
    free(t);
    snprintf(p, sizeof p, "%s/cuda/module.ptx", dir);
    t = slurp(p, NULL);
    cr_expect(strstr(t, ".entry igrc_k0("), "%s", p);
    free(t);
    char *file;
    CudaImage img;
    read_image(exe, &file, &img);
    cr_expect_str_eq(img.arch, "sm_90");
    cr_expect(!img.opt.tf32);
    cr_expect_eq(img.nkernels, nk, "the image has the compile's %d kernels", nk);
    cr_expect_gt(img.ptx_bytes, 1000);
    cr_expect(strstr(img.ptx, ".entry igrc_k0(") && strstr(img.ptx, ".entry igrc_matmul_f32("),
              "PTX holds generated and library kernels");
    char last[64];
    snprintf(last, sizeof last, ".entry igrc_k%d(", img.nkernels - 1);
    cr_expect(strstr(img.ptx, last), "PTX lacks %s", last);
    cr_expect(img.cubin_bytes > 4 && !memcmp(img.cubin, ELFMAG, SELFMAG), "the CUBIN is an ELF image");
    /* neither the executable nor igrc needs the CUDA driver library (it
     * is loaded with dlopen where there is one) */
    cr_expect(!elf_needs(file, "libcuda.so"), "%s links libcuda", exe);
    free(file);
    char *bin = slurp(igrc_bin(), NULL);
    cr_expect(elf_needs(bin, "libnvrtc.so"), "igrc links NVRTC");
    cr_expect(!elf_needs(bin, "libcuda.so"), "igrc links libcuda");
    free(bin);
    /* the executable still runs on the CPU */
    r = spawn_v(exe, (const char *const[]){"info", NULL});
    cr_expect_eq(r.rc, 0, "info: exit %d: %s", r.rc, r.err);
    result_free(&r);
    /* an unchanged model: no NVRTC work the second time */
    r = igrc("compile", src_path(MLP), "--batch", "16", "--target", "cuda", "-o", exe, "--time-passes");
    cr_expect_eq(r.rc, 0, "exit %d: %s", r.rc, r.err);
    cr_expect(strstr(r.err, "cache hit"), "second compile: %s", r.err);
    result_free(&r);
}

Test(cuda_driver, tf32_and_arch) {
    const char *exe = in_dir("mlp80");
    Result r = igrc("compile", src_path(MLP), "--batch", "16", "--target", "cuda", "--gpu-arch", "sm_80",
                    "--tf32", "-o", exe);
    cr_assert_eq(r.rc, 0, "exit %d: %s", r.rc, r.err);
    result_free(&r);
    char *file;
    CudaImage img;
    read_image(exe, &file, &img);
    cr_expect_str_eq(img.arch, "sm_80");
    cr_expect(img.opt.tf32);
    cr_expect(strstr(img.ptx, ".entry igrc_matmul_tf32(") && strstr(img.ptx, "mma.sync"),
              "the TF32 library kernels are in the image");
    cr_expect(strstr(img.ptx, ".target sm_80"), "PTX for sm_80");
    free(file);
}

/* --dump-dir is checked in executable_carries_the_image (its compile). */
Test(cuda_driver, emit_cuda_and_dumps) {
    const char *cu = in_dir("m.cu");
    Result r = igrc("compile", src_path(MLP), "--batch", "16", "--target", "cuda", "--emit", "cuda", "-o", cu);
    cr_assert_eq(r.rc, 0, "exit %d: %s", r.rc, r.err);
    result_free(&r);
    char *t = slurp(cu, NULL);
    cr_expect(strstr(t, "typedef long long i64;") && strstr(t, "igrc_k0(") &&
                  strstr(t, "igrc_gemm_tile(") && strstr(t, "igrc_exp("),
              "--emit cuda: prelude, library and kernels");
    free(t);
}

static void expect_bad(Result r, const char *w1, const char *w2) {
    cr_expect_eq(r.rc, 2, "exit %d, expected 2\nstderr: %s", r.rc, r.err);
    cr_expect(strstr(r.err, w1), "stderr lacks \"%s\": %s", w1, r.err);
    if (w2) cr_expect(strstr(r.err, w2), "stderr lacks \"%s\": %s", w2, r.err);
    result_free(&r);
}

Test(cuda_driver, bad_options) {
    const char *o = in_dir("x");
    expect_bad(igrc("compile", src_path(MLP), "--target", "cuda", "--gpu-arch", "sm_70", "-o", o), "sm_70",
               "supported: ");
    expect_bad(igrc("compile", src_path(MLP), "--target", "cuda", "--gpu-arch", "sm_75", "--tf32", "-o", o),
               "--tf32", "sm_80");
    expect_bad(igrc("compile", src_path(MLP), "--gpu-arch", "sm_90", "-o", o), "--gpu-arch", "--target cuda");
    expect_bad(igrc("compile", src_path(MLP), "--tf32", "-o", o), "--tf32", "--target cuda");
    expect_bad(igrc("compile", src_path(MLP), "--emit", "cuda"), "--emit cuda", "--target cuda");
    expect_bad(igrc("compile", src_path(MLP), "--target", "tpu"), "tpu", "cuda");
    expect_bad(igrc("run", src_path(MLP), "--target", "cuda", "--", "info"), "cuda", "CPU");
    cr_expect_neq(access(o, F_OK), 0, "no output written on errors");
}
