/* The graph-file frontend on mistakes in or across included files: include
 * cycles and missing includes, errors named in the file they are in (the
 * includer's settings, objectives and losses, two levels deep, -D), every
 * loss checked at load, and definitions made twice. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, realpath */

#include "tests/frontend/bad_input_util.h"

TestSuite(bad_include, .init = scratch_setup, .fini = scratch_teardown);
Test(bad_include, include_cycle) {
    put("b.json", "{\"include\": [\"a.json\"]}\n");
    const char *a = put("a.json", "{\"include\": [\"b.json\"]}\n");
    expect_bad(a, "include cycle", "a.json", "b.json", "include[0]");
}

Test(bad_include, missing_include) {
    const char *p = put("mi.json", "{\"include\": [\"nosuch/x.json\"]}\n");
    expect_bad(p, "include[0]", "nosuch/x.json", "not found");
    put("ok.json", "{\"params\": {}}\n");
    p = put("mi2.json", "{\"include\": [\"ok.json\", \"gone.json\"]}\n");
    expect_bad(p, "include[1]", "gone.json");
}

Test(bad_include, error_inside_an_include_names_it) {
    put("inner.json", "{\n  \"igrc\": 1,\n  \"bogus\": 1\n}\n");
    const char *p = put("outer.json", "{\"include\": [\"inner.json\"]}\n");
    expect_bad(p, "inner.json", "include[0]", "unknown key 'bogus'");
    put("inner2.json", "{\n  \"igrc\": 1,,\n}\n");
    p = put("outer2.json", "{\"include\": [\"inner2.json\"]}\n");
    expect_bad(p, "inner2.json:2:13:", "include[0]", "malformed JSON");
}

/* An error inside an objective or a loss written in an included file names
 * that file, not the file that includes it. */
Test(bad_include, error_in_an_included_objective_or_loss_names_its_file) {
    put("net.json", "{\"inputs\": {\"x\": {\"shape\": [\"B\", 4]}, \"y\": {\"shape\": [\"B\"], "
        "\"dtype\": \"i32\", \"classes\": 4}}, \"networks\": {\"n\": {\"nodes\": [{\"id\": \"out\", "
        "\"op\": \"relu\", \"inputs\": [\"x\"]}], \"output\": \"out\"}}}\n");
    put("obj.json", "{\"objective\": {\"inputs\": [\"x\", \"y\"], \"nodes\": [{\"id\": \"z\", \"op\": "
        "\"nett\", \"inputs\": [\"x\"]}], \"output\": \"z\"}}\n");
    Diag d;
    diag_init(&d);
    Module *m = frontend_load(put("top.json", "{\"include\": [\"net.json\", \"obj.json\"]}\n"), NULL, &d);
    cr_assert_null(m);
    cr_expect(strstr(d.msg, "obj.json: objective.nodes[0] (id 'z')") && !strstr(d.msg, "top.json"),
              "%s", d.msg);
    put("loss.json", "{\"losses\": {\"l\": {\"inputs\": [\"x\", \"y\"], \"nodes\": [{\"id\": \"z\", "
        "\"op\": \"net\", \"inputs\": [\"x\"]}, {\"id\": \"c\", \"op\": \"cross_entropyy\", "
        "\"inputs\": [\"z\", \"y\"]}], \"output\": \"c\"}}, \"objective\": {\"inputs\": [\"x\", \"y\"], "
        "\"nodes\": [{\"id\": \"loss\", \"op\": \"call\", \"graph\": \"l\", \"inputs\": [\"x\", \"y\"]}], "
        "\"output\": \"loss\"}}\n");
    diag_init(&d);
    m = frontend_load(put("top2.json", "{\"include\": [\"net.json\", \"loss.json\"]}\n"), NULL, &d);
    cr_assert_null(m);
    cr_expect(strstr(d.msg, "loss.json: losses.l.nodes[1]") && strstr(d.msg, "cross_entropyy"),
              "%s", d.msg);
}

/* Settings, inputs and top-level values given in an included file (two
 * levels down) name that file; a -D value names the define and the root. */
Test(bad_include, error_in_included_settings_or_inputs_names_its_file) {
    static const struct {
        const char *text, *words[3];
    } cases[] = {
        {"\"train\": {\"lr\": -1}", {"train.lr", ">= 0"}},
        {"\"eval\": {\"pgd_steps\": \"many\"}", {"eval.pgd_steps"}},
        {"\"train\": {\"optimiser\": \"sgd\"}", {"train.optimiser", "optimizer"}},
        {"\"inputs\": {\"x\": {\"shape\": [\"B\", 4], \"dtype\": \"f16\"}}", {"inputs.x", "dtype"}},
        {"\"batch\": 0", {"batch", "[1, 1048576]"}},
        {"\"data\": 7", {"data", "data set name"}},
        {"\"network\": 3", {"network", "must name a network"}},
        {"\"network\": \"nn\"", {"network", "no network named 'nn'"}},
        {"\"name\": \"a b\"", {"name", "a b"}},
    };
    put("inc/net.json", "%s", NET_N_PLAIN);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        put("inc/deep.json", "{\"include\": [\"net.json\"], %s}\n", cases[i].text);
        put("inc/mid.json", "{\"include\": [\"deep.json\"], \"description\": \"middle\"}\n");
        const char *p = put("inc_top.json", "{\"include\": [\"inc/mid.json\"]}\n");
        Diag d;
        diag_init(&d);
        Module *m = frontend_load(p, NULL, &d);
        cr_assert_null(m, "case %zu loaded", i);
        cr_expect(strstr(d.msg, "deep.json: ") && !strstr(d.msg, "inc_top.json") &&
                      !strstr(d.msg, "mid.json"),
                  "case %zu names the wrong file: %s", i, d.msg);
        for (int w = 0; w < 3 && cases[i].words[w]; w++)
            cr_expect(strstr(d.msg, cases[i].words[w]), "case %zu lacks '%s': %s", i,
                      cases[i].words[w], d.msg);
    }
    /* overridden by the including file: the override is what is wrong */
    put("inc/deep.json", "{\"include\": [\"net.json\"], \"train\": {\"lr\": 0.1}}\n");
    const char *p = put("inc_top2.json", "{\"include\": [\"inc/deep.json\"], \"train\": {\"lr\": -3}}\n");
    expect_bad(p, "inc_top2.json: train.lr");
    const char *defs[] = {"train.lr=-2"};
    FrontendOptions o = {.defines = defs, .ndefines = 1};
    expect_bad_opts(p, &o, "inc_top2.json (-D train.lr=-2): train.lr", (const char *)NULL);
}

/* Every loss is checked when the file loads, used or not: a mistake waiting
 * in an unused loss is an error now, not when someone first calls it. */
Test(bad_include, unused_loss_is_checked) {
    static const struct {
        const char *graph, *words[2];
    } cases[] = {
        {"{\"inputs\": [\"x\"], \"nodes\": [{\"id\": \"a\", \"op\": \"abss\", \"inputs\": [\"x\"]}], "
         "\"output\": \"a\"}",
         {"losses.spare.nodes[0] (id 'a')", "unknown objective op 'abss'"}},
        {"{\"inputs\": [\"x\"], \"nodes\": [{\"id\": \"a\", \"op\": \"abs\", \"inputs\": [\"q\"]}], "
         "\"output\": \"a\"}",
         {"losses.spare.nodes[0]", "input 'q' is not defined"}},
        {"{\"inputs\": [\"x\"], \"nodes\": [{\"id\": \"a\", \"op\": \"abs\", \"inputs\": [\"x\"]}], "
         "\"output\": \"b\"}",
         {"losses.spare", "'output' names no node: 'b'"}},
        {"{\"inputs\": [\"x\"], \"nodes\": [{\"id\": \"a\", \"op\": \"call\", \"graph\": \"nope\", "
         "\"inputs\": [\"x\"]}], \"output\": \"a\"}",
         {"losses.spare.nodes[0]", "no loss named 'nope'"}},
        {"{\"inputs\": [\"x\"], \"nodes\": [{\"id\": \"a\", \"op\": \"abs\", \"inputs\": [\"x\"], "
         "\"bogus\": 1}], \"output\": \"a\"}",
         {"losses.spare.nodes[0]", "unknown key 'bogus'"}},
        {"{\"inputs\": [\"x\"], \"nodes\": [{\"id\": \"x\", \"op\": \"abs\", \"inputs\": [\"x\"]}], "
         "\"output\": \"x\"}",
         {"losses.spare.nodes[0]", "defined twice"}},
        {"{\"inputs\": [\"x\", \"x\"], \"nodes\": [], \"output\": \"x\"}", {"losses.spare", "named twice"}},
        {"{\"inputs\": [\"x\"], \"nodes\": {}, \"output\": \"x\"}", {"losses.spare", "'nodes' list"}},
        {"{\"inputs\": [\"x\"], \"nodes\": [{\"id\": \"a\", \"op\": 5}], \"output\": \"a\"}",
         {"losses.spare.nodes[0]", "'op' must be a string"}},
    };
    put("ul/net.json", "{\"inputs\": {\"x\": {\"shape\": [\"B\", 4]}, \"y\": {\"shape\": [\"B\"], "
        "\"dtype\": \"i32\", \"classes\": 4}}, \"networks\": {\"n\": {\"nodes\": [{\"id\": \"out\", "
        "\"op\": \"relu\", \"inputs\": [\"x\"]}], \"output\": \"out\"}}}\n");
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        put("ul/losses.json", "{\"losses\": {\"spare\": %s}}\n", cases[i].graph);
        const char *p = put("ul_top.json", "{\"include\": [\"ul/net.json\", \"ul/losses.json\"]}\n");
        Diag d;
        diag_init(&d);
        Module *m = frontend_load(p, NULL, &d);
        cr_assert_null(m, "case %zu loaded", i);
        cr_expect(strstr(d.msg, "losses.json: ") != NULL, "case %zu: %s", i, d.msg);
        for (int w = 0; w < 2; w++)
            cr_expect(strstr(d.msg, cases[i].words[w]), "case %zu lacks '%s': %s", i,
                      cases[i].words[w], d.msg);
    }
    /* a well-formed unused loss is fine */
    put("ul/losses.json", "{\"losses\": {\"spare\": {\"inputs\": [\"x\"], \"nodes\": [{\"id\": \"a\", "
        "\"op\": \"abs\", \"inputs\": [\"x\"]}], \"output\": \"a\"}}}\n");
    Module *m = load_ok(put("ul_top.json", "{\"include\": [\"ul/net.json\", \"ul/losses.json\"]}\n"), NULL);
    module_free(m);
}

/* Loading top must fail with a message holding both words and not naming
 * top itself (the mistake is in a file it includes). */
static void expect_bad_in_include(const char *top, const char *w1, const char *w2) {
    Diag d;
    diag_init(&d);
    Module *m = frontend_load(top, NULL, &d);
    if (m) module_free(m);
    cr_assert_null(m, "%s: loaded, expected an error", top);
    cr_expect(strstr(d.msg, w1) && strstr(d.msg, w2) && !strstr(d.msg, base_of(top)),
              "expected '%s' and '%s', not %s: %s", w1, w2, base_of(top), d.msg);
}

/* Mistakes the file-naming audit found reaching the IR verifier or naming
 * the wrong place: each is now an error at the JSON path, in its file. */
Test(bad_include, labelled_inputs_reduction_call_arity_and_description) {
    static const char NET_XY[] =
        "{\"inputs\": {\"x\": {\"shape\": %s}, \"y\": {\"shape\": %s, \"dtype\": \"i32\", "
        "\"classes\": 4}}, \"networks\": {\"n\": {\"nodes\": [{\"id\": \"out\", \"op\": \"relu\", "
        "\"inputs\": [\"x\"]}], \"output\": \"out\"}}%s}\n";
    put("lab/net.json", NET_XY, "[1, 4]", "[\"B\"]", "");
    expect_bad_in_include(put("lab_top.json", "{\"include\": [\"lab/net.json\"]}\n"), "net.json: inputs.x",
               "start with \"B\"");
    put("lab/net.json", NET_XY, "[\"B\", 4]", "[\"B\", 2]", "");
    expect_bad_in_include(put("lab_top.json", "{\"include\": [\"lab/net.json\"]}\n"), "net.json: inputs.y",
               "i32 of shape [\"B\"]");
    put("lab/net.json", NET_XY, "[\"B\", 4]", "[\"B\"]", ", \"description\": 3");
    expect_bad_in_include(put("lab_top.json", "{\"include\": [\"lab/net.json\"]}\n"), "net.json: description",
               "must be a string");
    put("lab/net.json", NET_XY, "[\"B\", 4]", "[\"B\"]", "");
    put("lab/obj.json", "{\"losses\": {\"l\": {\"inputs\": [\"x\", \"y\"], \"nodes\": [{\"id\": \"z\", "
        "\"op\": \"net\", \"inputs\": [\"x\"]}, {\"id\": \"c\", \"op\": \"cross_entropy\", "
        "\"inputs\": [\"z\", \"y\"], \"reduction\": \"%s\"}], \"output\": \"c\"}}, \"objective\": "
        "{\"inputs\": [\"x\", \"y\"], \"nodes\": [{\"id\": \"loss\", \"op\": \"call\", \"graph\": \"l\", "
        "\"inputs\": %s}], \"output\": \"loss\"}}\n", "avg", "[\"x\", \"y\"]");
    const char *p = put("lab_top.json", "{\"include\": [\"lab/net.json\", \"lab/obj.json\"]}\n");
    expect_bad_in_include(p, "obj.json: losses.l.nodes[1] (id 'c')", "'reduction' must be mean, sum or none");
    put("lab/obj.json", "{\"losses\": {\"l\": {\"inputs\": [\"x\", \"y\"], \"nodes\": [{\"id\": \"z\", "
        "\"op\": \"net\", \"inputs\": [\"x\"]}, {\"id\": \"c\", \"op\": \"cross_entropy\", "
        "\"inputs\": [\"z\", \"y\"], \"reduction\": \"%s\"}], \"output\": \"c\"}}, \"objective\": "
        "{\"inputs\": [\"x\", \"y\"], \"nodes\": [{\"id\": \"loss\", \"op\": \"call\", \"graph\": \"l\", "
        "\"inputs\": %s}], \"output\": \"loss\"}}\n", "mean", "[\"x\"]");
    expect_bad_in_include(p, "obj.json: objective.nodes[0] (id 'loss')", "graph 'l' takes 2 input(s), 1 given");
}

static const char NET_N[] = "{\"inputs\": {\"x\": {\"shape\": [\"B\", 4]}}, \"networks\": {\"n\": "
                            "{\"nodes\": [{\"id\": \"out\", \"op\": \"relu\", \"inputs\": [\"x\"]}], "
                            "\"output\": \"out\"}}}\n";

Test(bad_include, network_defined_twice_names_both_files) {
    put("n1.json", "%s", NET_N);
    put("n2.json", "%s", NET_N);
    const char *p = put("twice.json", "{\"include\": [\"n1.json\", \"n2.json\"]}\n");
    expect_bad(p, "n1.json", "n2.json", "'n'", "also defined", "include[1]");
    /* The including file itself defines it again. */
    p = put("twice2.json",
            "{\"include\": [\"n1.json\"], \"networks\": {\"n\": {\"nodes\": [{\"id\": \"out\", "
            "\"op\": \"relu\", \"inputs\": [\"x\"]}], \"output\": \"out\"}}}\n");
    expect_bad(p, "n1.json", "'n'", "also defined");
}
