/* IR-in/IR-out tests of single passes (LLVM's lit/FileCheck habit). Each
 * tests/ir/passes/NAME.ir holds an input module in the text form, a line
 * `// RUN: pass[,pass...]` naming the passes to run in order, and, after a
 * line `// EXPECT:`, the exact module the passes must print. Lines starting
 * with `//` are not part of the input. A failure names the file and the
 * first differing line. */
#define _POSIX_C_SOURCE 200809L

#include <criterion/criterion.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/parse.h"
#include "ir/shape.h"
#include "ir/print.h"
#include "passes/pass.h"

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = '\0';
    fclose(f);
    return s;
}

/* The text of line `line` (1-based) of s, up to 200 characters, or "<end>". */
static void line_of(const char *s, int line, char out[208]) {
    for (int l = 1; l < line && *s; s++)
        if (*s == '\n') l++;
    if (!*s) {
        snprintf(out, 208, "<end of text>");
        return;
    }
    size_t k = strcspn(s, "\n");
    snprintf(out, 208, "%.*s", (int)(k > 200 ? 200 : k), s);
}

/* NULL when equal, else a unified-diff-like note on the first differing line
 * (malloc'd). */
static char *first_difference(const char *want, const char *got) {
    if (strcmp(want, got) == 0) return NULL;
    int line = 1;
    for (size_t i = 0; want[i] && want[i] == got[i]; i++) line += want[i] == '\n';
    char ctx[208], w[208], g[208];
    char *out = malloc(1024);
    if (line > 1) line_of(want, line - 1, ctx);
    line_of(want, line, w);
    line_of(got, line, g);
    snprintf(out, 1024, "@@ line %d @@\n %s\n-%s\n+%s", line, line > 1 ? ctx : "", w, g);
    return out;
}

static bool run_passes(Module *m, const char *list, const char *file) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    PassCtx ctx;
    Diag d;
    diag_init(&d);
    ctx.d = &d;
    for (char *save = NULL, *p = strtok_r(buf, ", \t", &save); p; p = strtok_r(NULL, ", \t", &save)) {
        const PassDef *pd = pass_find(p);
        cr_expect(pd, "%s: unknown pass '%s'", file, p);
        if (!pd) return false;
        if (!pd->run(m, &ctx)) {
            cr_expect(false, "%s: pass %s failed: %s", file, p, d.msg);
            return false;
        }
        diag_init(&d);
        if (!ir_verify(m, &d)) {
            cr_expect(false, "%s: the module does not verify after %s: %s", file, p, d.msg);
            return false;
        }
    }
    return true;
}

/* Runs one file; returns whether it passed (failures are reported). */
static bool check_file(const char *path, const char *file) {
    char *text = slurp(path);
    cr_assert(text, "cannot read %s", path);
    char *expect = strstr(text, "// EXPECT:");
    char *run = strstr(text, "// RUN:");
    cr_expect(expect && run && run < expect, "%s: needs a `// RUN:` line before `// EXPECT:`",
              file);
    if (!expect || !run || run > expect) {
        free(text);
        return false;
    }
    char passes[256];
    size_t k = strcspn(run + 7, "\n");
    snprintf(passes, sizeof passes, "%.*s", (int)(k < 255 ? k : 255), run + 7);
    char *want = expect + strcspn(expect, "\n");
    if (*want) want++;
    *expect = '\0';
    /* `//` lines of the input are blanked, keeping line numbers. */
    for (char *p = text; *p;) {
        char *e = p + strcspn(p, "\n");
        char *q = p + strspn(p, " \t");
        if (q[0] == '/' && q[1] == '/') memset(p, ' ', (size_t)(e - p));
        p = *e ? e + 1 : e;
    }
    bool ok = false;
    Diag d;
    diag_init(&d);
    Module *m = ir_parse(text, path, &d);
    cr_expect(m, "%s: input does not parse: %s", file, d.msg);
    if (m) {
        diag_init(&d);
        bool valid = ir_verify(m, &d);
        cr_expect(valid, "%s: input does not verify: %s", file, d.msg);
        if (valid && run_passes(m, passes, file)) {
            char *got = ir_module_to_string(m);
            char *diff = first_difference(want, got);
            cr_expect(!diff, "%s (RUN: %s): output differs from EXPECT\n%s\n--- full output ---\n%s",
                      file, passes, diff ? diff : "", got);
            ok = !diff;
            free(diff);
            free(got);
        }
        module_free(m);
    }
    /* The expectation itself is canonical: it prints back as written. */
    diag_init(&d);
    Module *e = ir_parse(want, path, &d);
    cr_expect(e, "%s: EXPECT does not parse: %s", file, d.msg);
    if (e) {
        char *again = ir_module_to_string(e);
        char *diff = first_difference(want, again);
        cr_expect(!diff, "%s: EXPECT is not in canonical print form\n%s", file, diff ? diff : "");
        ok = ok && !diff;
        free(diff);
        free(again);
        module_free(e);
    }
    free(text);
    return ok;
}

static int cmp_names(const void *a, const void *b) { return strcmp(a, b); }

Test(ir_files, every_pass_test_file_gives_its_expected_module) {
    const char *src = getenv("IGRC_SOURCE_DIR");
    cr_assert(src, "IGRC_SOURCE_DIR is not set");
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/tests/ir/passes", src);
    DIR *dp = opendir(dir);
    cr_assert(dp, "cannot open %s", dir);
    static char names[256][256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dp))) {
        size_t len = strlen(e->d_name);
        if (len > 3 && strcmp(e->d_name + len - 3, ".ir") == 0 && n < 256)
            snprintf(names[n++], 256, "%s", e->d_name);
    }
    closedir(dp);
    qsort(names, (size_t)n, sizeof names[0], cmp_names);
    int failed = 0, per_pass[3] = {0};
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX + 256];
        snprintf(path, sizeof path, "%s/%.255s", dir, names[i]);
        if (!check_file(path, names[i])) {
            failed++;
            fprintf(stderr, "FAIL: tests/ir/passes/%s\n", names[i]);
        }
        static const char *prefix[3] = {"simplify", "cse", "schedule"};
        for (int k = 0; k < 3; k++)
            per_pass[k] += strncmp(names[i], prefix[k], strlen(prefix[k])) == 0;
    }
    cr_expect_eq(failed, 0, "%d of %d IR files failed", failed, n);
    cr_expect_geq(per_pass[0], 6, "only %d simplify*.ir files", per_pass[0]);
    cr_expect_geq(per_pass[1], 6, "only %d cse*.ir files", per_pass[1]);
    cr_expect_geq(per_pass[2], 6, "only %d schedule*.ir files", per_pass[2]);
}

/* The measure itself on schedule_two_chains.ir's function: x (4000 bytes,
 * live from the start), then a1 and b1 (4000 each) together = 12000 in the
 * original order; 4000 + 4000 + the 4-byte a2 = 8004 after scheduling. */
#include "passes/schedule.h"

Test(ir_files, schedule_peak_bytes_of_two_chains) {
    static const char text[] =
        "module @t\n"
        "func @f {\n"
        "  %x = input() : f32[1000]\n"
        "  %a1 = exp(%x) : f32[1000]\n"
        "  %b1 = tanh(%x) : f32[1000]\n"
        "  %a2 = reduce_sum(%a1) {axes=[0], keepdims=0} : f32[]\n"
        "  %b2 = reduce_sum(%b1) {axes=[0], keepdims=0} : f32[]\n"
        "  %s = add(%a2, %b2) : f32[]\n"
        "  return s=%s\n"
        "}\n";
    Diag d;
    diag_init(&d);
    Module *m = ir_parse(text, "two_chains", &d);
    cr_assert(m, "%s", d.msg);
    cr_expect_eq(schedule_peak_bytes(m->funcs[0]), 12000);
    PassCtx ctx = {&d};
    cr_assert(pass_schedule(m, &ctx), "%s", d.msg);
    cr_expect_eq(schedule_peak_bytes(m->funcs[0]), 8004);
    module_free(m);
}
