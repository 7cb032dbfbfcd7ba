/* The settings table (base/settings.c): its checks, and that
 * docs/graph-format.md documents exactly its keys with their defaults. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/settings.h"
#include "tests/common/spawn.h"

Test(settings, checks_types_and_ranges) {
    char why[256];
    const SettingSpec *lr = settings_find("train.lr"), *ep = settings_find("train.epochs");
    const SettingSpec *b1 = settings_find("train.beta1"), *opt = settings_find("train.optimizer");
    const SettingSpec *nest = settings_find("train.nesterov"), *ms = settings_find("train.lr_milestones");
    cr_assert(lr && ep && b1 && opt && nest && ms);
    cr_expect(settings_check_num(lr, 0, why, sizeof why));
    cr_expect_not(settings_check_num(lr, -0.01, why, sizeof why));
    cr_expect(strstr(why, "must be a number >= 0, got -0.01"), "%s", why);
    cr_expect_not(settings_check_num(lr, NAN, why, sizeof why));
    cr_expect_not(settings_check_num(ep, 2.5, why, sizeof why));
    cr_expect_not(settings_check_num(ep, -9223372036854775808.0, why, sizeof why));
    cr_expect(strstr(why, "an integer in [1, 1000000]"), "%s", why);
    cr_expect(settings_check_num(b1, 0.999, why, sizeof why));
    cr_expect_not(settings_check_num(b1, 1, why, sizeof why), "beta1 = 1 divides by zero");
    cr_expect_not(settings_check_num(opt, 123, why, sizeof why));
    cr_expect(strstr(why, "adam|sgd"), "%s", why);
    cr_expect(settings_check_str(opt, "sgd", why, sizeof why));
    cr_expect_not(settings_check_str(opt, "adamw", why, sizeof why));
    cr_expect_not(settings_check_str(opt, "", why, sizeof why));
    cr_expect_not(settings_check_str(ep, "conv2d", why, sizeof why));
    cr_expect(strstr(why, "an integer, got the string \"conv2d\""), "%s", why);
    cr_expect(settings_check_num(nest, 1, why, sizeof why));
    cr_expect_not(settings_check_num(nest, 2, why, sizeof why));
    cr_expect(settings_check_str(ms, "75,90", why, sizeof why));
    cr_expect_null(settings_find("train.lrr"));
    cr_expect_str_eq(settings_closest("train.lrr"), "train.lr");
    cr_expect_str_eq(settings_closest("eval.pgd_step"), "eval.pgd_steps");
    cr_expect_eq(settings_default("eval.attack_steps"), 200);
}

/* "| `key` | type | range | default | ..." rows of the settings table. */
Test(settings, docs_table_matches) {
    char *doc = slurp(src_path("docs/graph-format.md"), NULL);
    const char *start = strstr(doc, "| setting | type | range | default | meaning |");
    cr_assert(start, "docs/graph-format.md has no settings table");
    int n;
    const SettingSpec *t = settings_table(&n);
    int rows = 0;
    for (const char *line = strchr(start, '\n') + 1; line && !strncmp(line, "|", 1);
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        char key[128];
        if (sscanf(line, "| `%127[^`]`", key) != 1) continue; /* the rule line */
        rows++;
        const SettingSpec *s = settings_find(key);
        cr_expect(s, "docs/graph-format.md documents '%s', which is no setting", key);
        if (!s || s->kind == SET_ENUM || s->kind == SET_TEXT || s->kind == SET_BOOL) continue;
        char dflt[64];
        snprintf(dflt, sizeof dflt, "| %g |", s->dflt);
        const char *end = strchr(line, '\n');
        char row[512];
        snprintf(row, sizeof row, "%.*s", (int)(end ? end - line : (long)strlen(line)), line);
        cr_expect(strstr(row, dflt), "docs give '%s' another default than %g: %s", key, s->dflt, row);
    }
    cr_expect_eq(rows, n, "docs/graph-format.md lists %d settings, the table has %d", rows, n);
    for (int i = 0; i < n; i++) {
        char want[160];
        snprintf(want, sizeof want, "| `%s` |", t[i].key);
        cr_expect(strstr(start, want), "setting %s is not documented in docs/graph-format.md", t[i].key);
    }
    free(doc);
}
