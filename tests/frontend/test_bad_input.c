/* The graph-file frontend on bad input: every class of mistake gives one
 * clear message (one line) that names the file and the JSON path or node
 * id, with exit class EXIT_BADINPUT, and frees everything (the suite runs
 * under LeakSanitizer in the sanitizer build). Also the positive side of
 * -D overrides, --batch, includes and PyTorch parameter names. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, realpath */

#include <criterion/criterion.h>
#include <dirent.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frontend/frontend.h"
#include "tests/common/scratch.h"

/* ---- a scratch directory per test (tests/common/scratch.c) ---- */

TestSuite(bad_input, .init = scratch_setup, .fini = scratch_teardown);
TestSuite(frontend_ok, .init = scratch_setup, .fini = scratch_teardown);


#include "tests/frontend/bad_input_util.h"

Test(bad_input, malformed_json_names_line_and_column) {
    /* The trailing comma before '}' on line 4, column 29. */
    const char *p = put("bad.json",
                        "{\n"
                        "  \"igrc\": 1,\n"
                        "  \"inputs\": {\n"
                        "    \"x\": {\"shape\": [\"B\", 4],}\n"
                        "  }\n"
                        "}\n");
    expect_bad(p, "bad.json:4:29:", "malformed JSON");
    /* A missing comma: the next key on line 3, column 3. */
    p = put("comma.json", "{\n  \"igrc\": 1\n  \"batch\": 4\n}\n");
    expect_bad(p, "comma.json:3:3:", "malformed JSON", "\"batch\"");
    /* A bad literal after a tab on line 3 (column 11). */
    p = put("lit.json", "{\n\t\"igrc\": 1,\n\t\"batch\": tru\n}\n");
    expect_bad(p, "lit.json:3:11:", "malformed JSON");
    /* A trailing comma in a list: the ']' on line 2, column 14. */
    p = put("list.json", "{\n  \"a\": [1, 2,]\n}\n");
    expect_bad(p, "list.json:2:14:", "malformed JSON");
    /* The file ends inside an object: after the last line. */
    p = put("eof.json", "{\n  \"igrc\": 1,\n");
    expect_bad(p, "eof.json:3:1:", "end of file");
    p = put("empty.json", "%s", "");
    expect_bad(p, "empty.json:1:1:", "malformed JSON");
    /* Garbage after the document. */
    p = put("tail.json", "{\"igrc\": 1}\n}\n");
    expect_bad(p, "tail.json:2:1:", "malformed JSON");
}

Test(bad_input, top_level_not_an_object) {
    expect_bad(put("arr.json", "[1, 2]\n"), "top level must be a JSON object");
    expect_bad(put("num.json", "42\n"), "top level must be a JSON object");
}

Test(bad_input, unknown_top_level_key_lists_allowed) {
    const char *p = put("typo.json", "{\"igrc\": 1, \"netwroks\": {}}\n");
    expect_bad(p, "unknown key 'netwroks'", "allowed:", "networks", "inputs", "include");
}

Test(bad_input, wrong_format_version) {
    expect_bad(put("v2.json", "{\"igrc\": 2}\n"), "igrc", "format 1");
}

Test(bad_input, missing_file_and_directory) {
    expect_bad(in_dir("nosuch.json"), "cannot open");
    mkdir(in_dir("dir.json"), 0700);
    expect_bad(in_dir("dir.json"), "not a regular file");
}

Test(bad_input, section_of_wrong_type) {
    expect_bad(put("nets.json", "{\"networks\": [1]}\n"), "networks", "must be an object");
    expect_bad(put("params.json", "{\"params\": 3}\n"), "params", "must be an object");
    expect_bad(put("incl.json", "{\"include\": \"a.json\"}\n"), "include", "list of file names");
}

/* ---- nodes ---- */

Test(bad_input, unknown_op_suggests) {
    const char *p = put_net(
        "unk.json",
        "{\"id\": \"out\", \"op\": \"conv2\", \"inputs\": [\"x\"], \"out_channels\": 1, \"kernel\": 3}");
    expect_bad(p, "networks.n.nodes[0]", "'out'", "unknown op 'conv2'", "did you mean 'conv2d'");
    p = put_net("unk2.json", "{\"id\": \"out\", \"op\": \"rleu\", \"inputs\": [\"x\"]}");
    expect_bad(p, "unknown op 'rleu'", "did you mean 'relu'");
}

Test(bad_input, reference_to_missing_node) {
    const char *p = put_net("miss.json", "{\"id\": \"out\", \"op\": \"relu\", \"inputs\": [\"nope\"]}");
    expect_bad(p, "networks.n.nodes[0]", "'out'", "'nope'", "names no node");
}

Test(bad_input, output_names_no_node) {
    const char *p = put_net("outp.json", "{\"id\": \"o\", \"op\": \"relu\", \"inputs\": [\"x\"]}");
    expect_bad(p, "networks.n", "'output'", "'out'");
}

Test(bad_input, cycle) {
    const char *p = put_net("cyc.json",
                            "{\"id\": \"a\", \"op\": \"relu\", \"inputs\": [\"b\"]},\n"
                            "{\"id\": \"b\", \"op\": \"relu\", \"inputs\": [\"a\"]},\n"
                            "{\"id\": \"out\", \"op\": \"relu\", \"inputs\": [\"b\"]}");
    expect_bad(p, "cycle", "'a'", "'b'", "networks.n.nodes[");
    /* A node that reads itself. */
    p = put_net("self.json", "{\"id\": \"out\", \"op\": \"add\", \"inputs\": [\"x\", \"out\"]}");
    expect_bad(p, "cycle", "'out'");
}

Test(bad_input, duplicate_ids_name_both_indices) {
    const char *p = put_net("dup.json",
                            "{\"id\": \"a\", \"op\": \"relu\", \"inputs\": [\"x\"]},\n"
                            "{\"id\": \"b\", \"op\": \"relu\", \"inputs\": [\"a\"]},\n"
                            "{\"id\": \"a\", \"op\": \"relu\", \"inputs\": [\"b\"]},\n"
                            "{\"id\": \"out\", \"op\": \"relu\", \"inputs\": [\"a\"]}");
    expect_bad(p, "duplicate id 'a'", "nodes[2]", "nodes[0]");
}

Test(bad_input, id_shadowing_the_input) {
    const char *p = put_net("shadow.json",
                            "{\"id\": \"x\", \"op\": \"relu\", \"inputs\": [\"x\"]},\n"
                            "{\"id\": \"out\", \"op\": \"relu\", \"inputs\": [\"x\"]}");
    expect_bad(p, "nodes[0]", "'x'", "input");
}

Test(bad_input, node_not_an_object_or_without_id) {
    expect_bad(put_net("num.json", "5, {\"id\": \"out\", \"op\": \"relu\", \"inputs\": [\"x\"]}"),
               "networks.n.nodes[0]", "must be an object");
    expect_bad(put_net("noid.json", "{\"op\": \"relu\", \"inputs\": [\"x\"]}"),
               "networks.n.nodes[0]", "'id'");
    expect_bad(put_net("noinputs.json", "{\"id\": \"out\", \"op\": \"relu\"}"), "'out'", "'inputs'");
    expect_bad(put_net("noop.json", "{\"id\": \"out\", \"inputs\": [\"x\"]}"), "'out'", "'op'",
               "required");
}

/* Names become program tokens: a blank, quote, '#' or newline in one
 * would compile into an executable that cannot start. */
Test(bad_input, names_outside_the_identifier_set) {
    static const char *const bad_ids[] = {"a b", "a\\\"b", "x#1", "a\\nb", ""};
    for (size_t i = 0; i < sizeof bad_ids / sizeof *bad_ids; i++) {
        char nodes[256], file[32];
        snprintf(nodes, sizeof nodes,
                 "{\"id\": \"%s\", \"op\": \"relu\", \"inputs\": [\"x\"]},\n"
                 "{\"id\": \"out\", \"op\": \"relu\", \"inputs\": [\"x\"]}", bad_ids[i]);
        snprintf(file, sizeof file, "id%zu.json", i);
        expect_bad(put_net(file, nodes), "networks.n.nodes[0].id", "not a valid name");
    }
    static const char *const bad_names[] = {"\"my model\"", "\"\"", "null", "3", "[\"a\"]"};
    for (size_t i = 0; i < sizeof bad_names / sizeof *bad_names; i++) {
        char file[32];
        snprintf(file, sizeof file, "name%zu.json", i);
        const char *p = put(file, "{\"name\": %s, \"inputs\": {\"x\": {\"shape\": [\"B\", 4]}}, "
                            "\"networks\": {\"n\": {\"nodes\": [{\"id\": \"out\", \"op\": \"relu\", "
                            "\"inputs\": [\"x\"]}], \"output\": \"out\"}}}\n", bad_names[i]);
        expect_bad(p, "name");
    }
    expect_bad(put("inp.json", "{\"inputs\": {\"x y\": {\"shape\": [\"B\", 4]}}}\n"), "inputs.x y",
               "not a valid name");
    /* the error names the included file the bad id is in */
    put_net("inner_id.json", "{\"id\": \"o ut\", \"op\": \"relu\", \"inputs\": [\"x\"]}");
    Diag d;
    diag_init(&d);
    cr_assert_null(frontend_load(put("outer_id.json", "{\"include\": [\"inner_id.json\"]}\n"),
                                 NULL, &d));
    cr_expect(strstr(d.msg, "inner_id.json: networks.n.nodes[0].id") && strstr(d.msg, "'o ut'"),
              "%s", d.msg);
}

Test(frontend_ok, a_file_name_outside_the_identifier_set_gives_a_clean_program_name) {
    const char *p = put("my model (1).json", NET_N_PLAIN);
    Module *m = load_ok(p, NULL);
    cr_expect_str_eq(m->name, "my_model__1_");
    module_free(m);
}

/* Settings are typed and ranged by one table (base/settings.h). */
Test(bad_input, settings_unknown_mistyped_or_out_of_range) {
    static const struct {
        const char *train, *words[2];
    } cases[] = {
        {"\"lrr\": 0.1", {"train.lrr", "did you mean train.lr?"}},
        {"\"lr\": -0.01", {"train.lr", "must be a number >= 0, got -0.01"}},
        {"\"optimizer\": 123", {"train.optimizer", "adam|sgd"}},
        {"\"optimizer\": \"adamw\"", {"train.optimizer", "\"adamw\""}},
        {"\"momentum\": -0.9", {"train.momentum", "in [0, 1]"}},
        {"\"epochs\": \"conv2d\"", {"train.epochs", "an integer, got the string"}},
        {"\"beta1\": 1", {"train.beta1", "in [0, 1)"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char file[32];
        snprintf(file, sizeof file, "set%zu.json", i);
        const char *p = put(file, "{\"train\": {%s}, \"inputs\": {\"x\": {\"shape\": [\"B\", 4]}}, "
                            "\"networks\": {\"n\": {\"nodes\": [{\"id\": \"out\", \"op\": \"relu\", "
                            "\"inputs\": [\"x\"]}], \"output\": \"out\"}}}\n", cases[i].train);
        expect_bad(p, cases[i].words[0], cases[i].words[1]);
    }
    const char *p = put("evalset.json", "{\"eval\": {\"pgd_steps\": -9223372036854775808}, "
                        "\"inputs\": {\"x\": {\"shape\": [\"B\", 4]}}, \"networks\": {\"n\": "
                        "{\"nodes\": [{\"id\": \"out\", \"op\": \"relu\", \"inputs\": [\"x\"]}], "
                        "\"output\": \"out\"}}}\n");
    expect_bad(p, "eval.pgd_steps", "an integer in [0, 1000000]");
    /* -D sets a setting of the table the file leaves out, checked alike */
    const char *q = put("plain.json", "{\"train\": {\"lr\": 0.1}, \"inputs\": {\"x\": {\"shape\": "
                        "[\"B\", 4]}}, \"networks\": {\"n\": {\"nodes\": [{\"id\": \"out\", \"op\": "
                        "\"relu\", \"inputs\": [\"x\"]}], \"output\": \"out\"}}}\n");
    const char *bad_def[] = {"train.momentum=-0.9"};
    FrontendOptions o = {bad_def, 1, 0};
    expect_bad_opts(q, &o, "train.momentum", "in [0, 1]", (const char *)NULL);
    const char *good_def[] = {"train.momentum=0.5"};
    FrontendOptions g = {good_def, 1, 0};
    Module *m = load_ok(q, &g);
    module_free(m);
}

Test(bad_input, long_chain_listed_backwards) {
    /* Each node listed before its input: deep nesting, an error and no
     * stack overflow. */
    enum { N = 3000 };
    size_t cap = (size_t)N * 80, k = 0;
    char *nodes = malloc(cap);
    k += (size_t)snprintf(nodes + k, cap - k,
                          "{\"id\": \"out\", \"op\": \"relu\", \"inputs\": [\"n%d\"]}", N - 1);
    for (int i = N - 1; i > 0; i--)
        k += (size_t)snprintf(nodes + k, cap - k,
                              ",\n{\"id\": \"n%d\", \"op\": \"relu\", \"inputs\": [\"n%d\"]}", i,
                              i - 1);
    snprintf(nodes + k, cap - k, ",\n{\"id\": \"n0\", \"op\": \"relu\", \"inputs\": [\"x\"]}");
    const char *p = put_net("chain.json", nodes);
    free(nodes);
    expect_bad(p, "networks.n.nodes[", "list nodes after their inputs");
}

Test(bad_input, parameter_name_made_twice) {
    /* Node "a.b" of the network and node b of block instance a would both
     * own a.b.weight. */
    const char *p = put(
        "coll.json",
        "{\"inputs\": {\"x\": {\"shape\": [\"B\", 4]}},\n"
        " \"blocks\": {\"blk\": {\"inputs\": [\"x\"], \"nodes\": [{\"id\": \"b\", \"op\": "
        "\"linear\", \"inputs\": [\"x\"], \"out_features\": 4}], \"output\": \"b\"}},\n"
        " \"networks\": {\"n\": {\"nodes\": [{\"id\": \"a\", \"block\": \"blk\", \"inputs\": "
        "[\"x\"]}, {\"id\": \"a.b\", \"op\": \"linear\", \"inputs\": [\"a\"], \"out_features\": "
        "4}, {\"id\": \"out\", \"op\": \"relu\", \"inputs\": [\"a.b\"]}], \"output\": "
        "\"out\"}}}\n");
    expect_bad(p, "networks.n.nodes[1]", "'a.b'", "a.b.weight");
}

Test(bad_input, sizes_that_would_overflow) {
    const char *p = put("bigin.json",
                        "{\"inputs\": {\"x\": {\"shape\": [\"B\", 16777216, 16777216, 16777216]}}}\n");
    expect_bad(p, "inputs.x", "2^40");
    p = put_net("bigout.json", "{\"id\": \"out\", \"op\": \"conv2d\", \"inputs\": [\"x\"], "
                               "\"out_channels\": 1048576, \"kernel\": 1, \"padding\": 1000000}");
    expect_bad(p, "networks.n.nodes[0]", "'out'", "2^40");
    p = put_net("bigw.json",
                "{\"id\": \"f\", \"op\": \"flatten\", \"inputs\": [\"x\"]},\n"
                "{\"id\": \"h\", \"op\": \"linear\", \"inputs\": [\"f\"], \"out_features\": 16777216},\n"
                "{\"id\": \"out\", \"op\": \"linear\", \"inputs\": [\"h\"], \"out_features\": 16777216}");
    expect_bad(p, "networks.n.nodes[2]", "'out'", "out.weight", "2^40");
    p = put("classes.json",
            "{\"inputs\": {\"y\": {\"shape\": [\"B\"], \"dtype\": \"i32\", \"classes\": 1e20}}}\n");
    expect_bad(p, "inputs.y", "'classes'");
}

Test(bad_input, linear_on_4d_input) {
    const char *p = put_net(
        "lin.json", "{\"id\": \"out\", \"op\": \"linear\", \"inputs\": [\"x\"], \"out_features\": 3}");
    expect_bad(p, "networks.n.nodes[0]", "'out'", "flatten", "f32[128,1,8,8]");
}

Test(bad_input, add_of_different_shapes_shows_both) {
    const char *p = put_net("add.json",
                            "{\"id\": \"p\", \"op\": \"maxpool2d\", \"inputs\": [\"x\"], \"kernel\": 2},\n"
                            "{\"id\": \"out\", \"op\": \"add\", \"inputs\": [\"x\", \"p\"]}");
    expect_bad(p, "networks.n.nodes[1]", "'out'", "f32[128,1,8,8]", "f32[128,1,4,4]");
}

/* avgpool2d's padding (at most half the kernel) and count_include_pad
 * (bool; avgpool2d only). */
Test(bad_input, avgpool_padding_and_count_include_pad) {
    const char *p = put_net("avgpad.json", "{\"id\": \"out\", \"op\": \"avgpool2d\", \"inputs\": "
                                           "[\"x\"], \"kernel\": 2, \"padding\": [0, 2]}");
    expect_bad(p, "networks.n.nodes[0]", "'out'", "padding [0,2]", "half the kernel [2,2]");
    p = put_net("avgcip.json", "{\"id\": \"out\", \"op\": \"avgpool2d\", \"inputs\": [\"x\"], "
                               "\"kernel\": 3, \"padding\": 1, \"count_include_pad\": 0}");
    expect_bad(p, "networks.n.nodes[0]", "'out'", "'count_include_pad'", "true or false");
    p = put_net("maxcip.json", "{\"id\": \"out\", \"op\": \"maxpool2d\", \"inputs\": [\"x\"], "
                               "\"kernel\": 3, \"padding\": 1, \"count_include_pad\": false}");
    expect_bad(p, "networks.n.nodes[0]", "count_include_pad");
}

/* The node carries padding and count_include_pad = 0 when they matter:
 * 8x8, kernel 3, stride 2, padding 1 -> 4x4. */
Test(frontend_ok, avgpool_padding_and_count_include_pad) {
    const char *p = put_net("avgok.json",
                            "{\"id\": \"a\", \"op\": \"avgpool2d\", \"inputs\": [\"x\"], "
                            "\"kernel\": 3, \"stride\": 2, \"padding\": 1, \"count_include_pad\": false},\n"
                            "{\"id\": \"out\", \"op\": \"avgpool2d\", \"inputs\": [\"a\"], "
                            "\"kernel\": 2, \"padding\": 0, \"count_include_pad\": false}");
    Module *m = load_ok(p, NULL);
    int seen = 0;
    for (int f = 0; f < m->nfuncs; f++)
        for (int i = 0; i < m->funcs[f]->n; i++) {
            const Node *n = &m->funcs[f]->nodes[i];
            if (n->op != OP_AVGPOOL2D) continue;
            int64_t pd[2] = {-1, -1};
            bool first = n->type.dim[2] == 4;
            cr_expect_eq(node_ints(n, "padding", pd, 2), first ? 2 : 0, "%s", n->name);
            cr_expect_eq(node_int(n, "count_include_pad", 1), first ? 0 : 1, "%s", n->name);
            if (first) cr_expect(pd[0] == 1 && pd[1] == 1 && n->type.dim[3] == 4);
            else cr_expect(n->type.dim[2] == 2 && n->type.dim[3] == 2);
            seen++;
        }
    cr_expect_geq(seen, 2, "both pools are in the module");
    module_free(m);
}

Test(bad_input, wrong_arity) {
    const char *p = put_net("ar.json", "{\"id\": \"out\", \"op\": \"add\", \"inputs\": [\"x\"]}");
    expect_bad(p, "'out'", "add", "2 input");
    p = put_net("ar2.json", "{\"id\": \"out\", \"op\": \"relu\", \"inputs\": [\"x\", \"x\"]}");
    expect_bad(p, "'out'", "relu", "one input");
}

Test(bad_input, kernel_does_not_fit) {
    const char *p = put_net("big.json", "{\"id\": \"out\", \"op\": \"conv2d\", \"inputs\": [\"x\"], "
                                        "\"out_channels\": 1, \"kernel\": 9}");
    expect_bad(p, "networks.n.nodes[0]", "'out'", "kernel");
}

Test(bad_input, attribute_of_wrong_type) {
    const char *p = put_net("kstr.json", "{\"id\": \"out\", \"op\": \"conv2d\", \"inputs\": [\"x\"], "
                                         "\"out_channels\": 1, \"kernel\": \"3\"}");
    expect_bad(p, "networks.n.nodes[0]", "'out'", "'kernel'", "integer");
    p = put_net("bias.json", "{\"id\": \"out\", \"op\": \"conv2d\", \"inputs\": [\"x\"], "
                             "\"out_channels\": 1, \"kernel\": 3, \"bias\": 1}");
    expect_bad(p, "'bias'", "true or false");
    p = put_net("pfloat.json", "{\"id\": \"out\", \"op\": \"dropout\", \"inputs\": [\"x\"], \"p\": \"half\"}");
    expect_bad(p, "'p'", "number");
    p = put_net("init.json", "{\"id\": \"out\", \"op\": \"conv2d\", \"inputs\": [\"x\"], "
                             "\"out_channels\": 1, \"kernel\": 3, \"init\": \"glorot\"}");
    expect_bad(p, "'init'", "glorot", "kaiming_normal");
}

Test(bad_input, attribute_out_of_range) {
    const char *p = put_net("k0.json", "{\"id\": \"out\", \"op\": \"conv2d\", \"inputs\": [\"x\"], "
                                       "\"out_channels\": 1, \"kernel\": 0}");
    expect_bad(p, "'out'", "'kernel'", "out of range");
    p = put_net("dp.json", "{\"id\": \"out\", \"op\": \"dropout\", \"inputs\": [\"x\"], \"p\": 1.5}");
    expect_bad(p, "'out'", "'p'", "1.5", "out of range");
    p = put_net("oc.json", "{\"id\": \"out\", \"op\": \"conv2d\", \"inputs\": [\"x\"], "
                           "\"out_channels\": -1, \"kernel\": 3}");
    expect_bad(p, "'out'", "'out_channels'", "-1", "out of range");
    p = put_net("pair.json", "{\"id\": \"out\", \"op\": \"conv2d\", \"inputs\": [\"x\"], "
                             "\"out_channels\": 1, \"kernel\": [3, 0]}");
    expect_bad(p, "'out'", "'kernel'");
    p = put_net("frac.json", "{\"id\": \"out\", \"op\": \"conv2d\", \"inputs\": [\"x\"], "
                             "\"out_channels\": 1.5, \"kernel\": 3}");
    expect_bad(p, "'out_channels'", "integer");
}

Test(bad_input, unknown_attribute_key) {
    const char *p = put_net("kernal.json", "{\"id\": \"out\", \"op\": \"conv2d\", \"inputs\": [\"x\"], "
                                           "\"out_channels\": 1, \"kernal\": 3}");
    expect_bad(p, "networks.n.nodes[0]", "'out'", "unknown key 'kernal'", "kernel");
    /* cJSON takes a raw newline inside a string: the message stays one line. */
    p = put_net("raw.json", "{\"id\": \"out\", \"op\": \"conv2d\", \"inputs\": [\"x\"], "
                            "\"out_channels\": 1, \"ker\nnel\": 3}");
    expect_bad(p, "networks.n.nodes[0]", "unknown key 'ker?nel'");
}

/* ---- includes ---- */

/* ---- blocks and references ---- */

Test(bad_input, block_missing_argument) {
    const char *p = put_block_net("bm.json", "{\"id\": \"out\", \"block\": \"blk\", \"inputs\": [\"x\"]}");
    expect_bad(p, "networks.n.nodes[0]", "'out'", "blk", "needs argument 'w'");
}

Test(bad_input, instance_passes_unknown_argument) {
    const char *p = put_block_net(
        "bu.json", "{\"id\": \"out\", \"block\": \"blk\", \"inputs\": [\"x\"], \"args\": {\"w\": 3, "
                   "\"width\": 4}}");
    expect_bad(p, "networks.n.nodes[0]", "'out'", "blk", "no argument 'width'");
}

Test(bad_input, unknown_block_and_error_inside_a_block) {
    const char *p = put_block_net("nb.json", "{\"id\": \"out\", \"block\": \"blok\", \"inputs\": [\"x\"]}");
    expect_bad(p, "'out'", "no block named 'blok'");
    /* w = 0 is out of range for out_features: the error names the node in
     * the block and the instance. */
    p = put_block_net("bz.json", "{\"id\": \"out\", \"block\": \"blk\", \"inputs\": [\"x\"], "
                                 "\"args\": {\"w\": 0}}");
    expect_bad(p, "blocks.blk.nodes[0]", "'fc'", "'out'", "out_features", "out of range");
    /* A block that instantiates itself. */
    p = put("rec.json",
            "{\"inputs\": {\"x\": {\"shape\": [\"B\", 4]}},\n"
            " \"blocks\": {\"r\": {\"inputs\": [\"x\"], \"nodes\": [{\"id\": \"i\", \"block\": \"r\", "
            "\"inputs\": [\"x\"]}], \"output\": \"i\"}},\n"
            " \"networks\": {\"n\": {\"nodes\": [{\"id\": \"out\", \"block\": \"r\", \"inputs\": "
            "[\"x\"]}], \"output\": \"out\"}}}\n");
    expect_bad(p, "nest deeper");
    /* A malformed block definition. */
    p = put("bargs.json",
            "{\"inputs\": {\"x\": {\"shape\": [\"B\", 4]}},\n"
            " \"blocks\": {\"b\": {\"args\": [1], \"inputs\": [\"x\"], \"nodes\": [{\"id\": \"o\", "
            "\"op\": \"relu\", \"inputs\": [\"x\"]}], \"output\": \"o\"}},\n"
            " \"networks\": {\"n\": {\"nodes\": [{\"id\": \"out\", \"block\": \"b\", \"inputs\": "
            "[\"x\"]}], \"output\": \"out\"}}}\n");
    expect_bad(p, "blocks.b", "'args'", "object");
}

Test(bad_input, dollar_reference_to_nothing) {
    const char *p = put_block_net(
        "bref.json", "{\"id\": \"out\", \"block\": \"blk\", \"inputs\": [\"x\"], \"args\": {\"w\": "
                     "\"$nothing\"}}");
    expect_bad(p, "networks.n.nodes[0]", "'out'", "'$nothing'", "names no block argument");
    p = put_net("op.json", "{\"id\": \"out\", \"op\": \"$act\", \"inputs\": [\"x\"]}");
    expect_bad(p, "'out'", "'$act'");
    /* References that go round in a circle. */
    p = put("circ.json",
            "{\"params\": {\"a\": \"$b\", \"b\": \"$a\"}, \"inputs\": {\"x\": {\"shape\": [\"B\", 4]}},"
            " \"networks\": {\"n\": {\"nodes\": [{\"id\": \"out\", \"op\": \"$a\", \"inputs\": "
            "[\"x\"]}], \"output\": \"out\"}}}\n");
    expect_bad(p, "'out'", "cycle");
}

/* ---- -D overrides ---- */

Test(bad_input, define_with_unknown_key) {
    const char *defs[] = {"nosuch=3"};
    FrontendOptions o = {defs, 1, 0};
    const char *p = model_path("models/nets/smallcnn.json");
    expect_bad_opts(p, &o, "-D nosuch=3", "no setting 'nosuch'", (const char *)NULL);
    const char *defs2[] = {"train.lr=0.1"}; /* smallcnn.json has no train section */
    FrontendOptions o2 = {defs2, 1, 0};
    expect_bad_opts(p, &o2, "-D train.lr=0.1", (const char *)NULL);
}

Test(bad_input, define_replacing_a_section) {
    const char *p = model_path("models/nets/smallcnn.json");
    const char *defs[] = {"inputs=3"};
    FrontendOptions o = {defs, 1, 0};
    expect_bad_opts(p, &o, "-D inputs=3", "section", (const char *)NULL);
    const char *defs2[] = {"inputs.x.shape=4"};
    FrontendOptions o2 = {defs2, 1, 0};
    expect_bad_opts(p, &o2, "-D inputs.x.shape=4", "list", (const char *)NULL);
}

Test(bad_input, define_malformed) {
    const char *defs[] = {"beta"};
    FrontendOptions o = {defs, 1, 0};
    const char *p = model_path("models/nets/smallcnn.json");
    expect_bad_opts(p, &o, "-D beta", "key=value", (const char *)NULL);
    const char *defs2[] = {"act=relu", "=3"};
    FrontendOptions o2 = {defs2, 2, 0};
    expect_bad_opts(p, &o2, "-D =3", "key=value", (const char *)NULL);
}

Test(bad_input, define_giving_a_bad_value) {
    const char *p = model_path("models/nets/smallcnn.json");
    const char *defs[] = {"act=swish"};
    FrontendOptions o = {defs, 1, 0};
    expect_bad_opts(p, &o, "unknown op 'swish'", "relu1", (const char *)NULL);
    const char *defs2[] = {"batch=0"};
    FrontendOptions o2 = {defs2, 1, 0};
    expect_bad_opts(p, &o2, "batch", (const char *)NULL);
}

/* ---- networks and inputs ---- */

Test(bad_input, no_network) {
    const char *p = put("nonet.json", "{\"inputs\": {\"x\": {\"shape\": [\"B\", 4]}}}\n");
    expect_bad(p, "no network");
}

Test(bad_input, several_networks_without_selection) {
    const char *p = put(
        "sev.json",
        "{\"inputs\": {\"x\": {\"shape\": [\"B\", 4]}}, \"networks\": {"
        "\"a\": {\"nodes\": [{\"id\": \"out\", \"op\": \"relu\", \"inputs\": [\"x\"]}], \"output\": \"out\"},"
        "\"b\": {\"nodes\": [{\"id\": \"out\", \"op\": \"relu\", \"inputs\": [\"x\"]}], \"output\": \"out\"}}}\n");
    expect_bad(p, "several networks", "\"network\"");
    /* ... and selecting one that does not exist. */
    p = put("sel.json", "{\"network\": \"c\", \"include\": [\"sev.json\"]}\n");
    expect_bad(p, "no network named 'c'", "a, b");
}

Test(bad_input, network_reads_undescribed_input) {
    const char *p = put("noin.json", "{\"networks\": {\"n\": {\"input\": \"img\", \"nodes\": [{\"id\": "
                                     "\"out\", \"op\": \"relu\", \"inputs\": [\"img\"]}], \"output\": "
                                     "\"out\"}}}\n");
    expect_bad(p, "'img'", "inputs");
}

Test(bad_input, input_with_bad_shape) {
    static const char *const shapes[] = {"[0, 4]", "[\"B\", -1]", "[1, \"C\"]", "\"B\"",
                                         "[1, 2, 3, 4, 5, 6, 7]", "[1, 2.5]", "[4, \"B\"]", NULL};
    for (const char *const *s = shapes; *s; s++) {
        const char *p = put("shape.json",
                            "{\"inputs\": {\"x\": {\"shape\": %s}}, \"networks\": {\"n\": {\"nodes\": "
                            "[{\"id\": \"out\", \"op\": \"relu\", \"inputs\": [\"x\"]}], \"output\": "
                            "\"out\"}}}\n",
                            *s);
        expect_bad(p, "inputs.x", "'shape'");
    }
    const char *p = put("dtype.json", "{\"inputs\": {\"x\": {\"shape\": [\"B\", 4], \"dtype\": "
                                      "\"f16\"}}}\n");
    expect_bad(p, "inputs.x", "'dtype'");
    p = put("ikey.json", "{\"inputs\": {\"x\": {\"shape\": [\"B\", 4], \"shap\": 1}}}\n");
    expect_bad(p, "inputs.x", "unknown key 'shap'");
    p = put("range.json", "{\"inputs\": {\"x\": {\"shape\": [\"B\", 4], \"range\": [1, 0]}}}\n");
    expect_bad(p, "inputs.x", "'range'");
    p = put("batch.json", "{\"batch\": 0, \"inputs\": {\"x\": {\"shape\": [\"B\", 4]}}}\n");
    expect_bad(p, "batch", "integer");
}

/* ---- the positive side ---- */

static int count_op(const Module *m, OpKind op) {
    const Function *f = module_find_func(m, "predict");
    cr_assert(f, "no predict");
    int n = 0;
    for (int i = 0; i < f->n; i++) n += f->nodes[i].op == op;
    return n;
}

static const InputDesc *input_of(const Module *m, const char *name) {
    for (int i = 0; i < m->ninputs; i++)
        if (strcmp(m->inputs[i].name, name) == 0) return &m->inputs[i];
    cr_assert_fail("no input %s", name);
    return NULL;
}

Test(frontend_ok, define_overrides_act) {
    const char *p = model_path("models/nets/smallcnn.json");
    Module *m = load_ok(p, NULL);
    cr_expect_eq(count_op(m, OP_RELU), 6);
    cr_expect_eq(count_op(m, OP_SOFTPLUS), 0);
    module_free(m);
    const char *defs[] = {"act=softplus"};
    FrontendOptions o = {defs, 1, 0};
    m = load_ok(p, &o);
    cr_expect_eq(count_op(m, OP_SOFTPLUS), 6);
    cr_expect_eq(count_op(m, OP_RELU), 0);
    /* The graph notes record the op the node became. */
    bool seen = false;
    for (int i = 0; i < m->nnotes; i++)
        if (strcmp(m->notes[i].path, "relu1") == 0) {
            cr_expect_str_eq(m->notes[i].op, "softplus");
            seen = true;
        }
    cr_expect(seen, "no note for relu1");
    module_free(m);
    /* Dotted paths reach the same setting. */
    const char *defs2[] = {"params.act=tanh"};
    FrontendOptions o2 = {defs2, 1, 0};
    m = load_ok(p, &o2);
    cr_expect_eq(count_op(m, OP_TANH), 6);
    module_free(m);
}

Test(frontend_ok, batch_option_and_define) {
    const char *p = model_path("models/nets/smallcnn.json");
    Module *m = load_ok(p, NULL);
    cr_expect_eq(m->batch, 128);
    cr_expect_eq(input_of(m, "x")->type.dim[0], 128);
    module_free(m);

    FrontendOptions o = {NULL, 0, 4};
    m = load_ok(p, &o);
    cr_expect_eq(m->batch, 4);
    const InputDesc *x = input_of(m, "x");
    cr_expect_eq(x->type.rank, 4);
    cr_expect_eq(x->type.dim[0], 4);
    cr_expect_eq(x->type.dim[1], 1);
    cr_expect_eq(x->type.dim[2], 28);
    cr_expect_eq(input_of(m, "y")->type.dim[0], 4);
    const Function *f = module_find_func(m, "predict");
    cr_assert(f && f->noutputs == 1);
    const Type *lt = &f->nodes[f->outputs[0].value].type;
    cr_expect_eq(lt->rank, 2);
    cr_expect_eq(lt->dim[0], 4);
    cr_expect_eq(lt->dim[1], 10);
    module_free(m);

    /* -D batch=4 works on a file that leaves batch at its default. */
    const char *defs[] = {"batch=4"};
    FrontendOptions o2 = {defs, 1, 0};
    m = load_ok(p, &o2);
    cr_expect_eq(m->batch, 4);
    cr_expect_eq(input_of(m, "x")->type.dim[0], 4);
    module_free(m);

    /* opts.batch wins over the file's and -D's batch. */
    const char *defs3[] = {"batch=8"};
    FrontendOptions o3 = {defs3, 1, 3};
    m = load_ok(model_path("models/mnist_smallcnn.json"), &o3);
    cr_expect_eq(m->batch, 3);
    cr_expect_eq(input_of(m, "x")->type.dim[0], 3);
    module_free(m);
}

/* A relative path from the scratch directory to the repository file rel. */
static void rel_to_source(const char *rel, char *out, size_t cap) {
    char dir[PATH_MAX], src[PATH_MAX];
    cr_assert(realpath(g_dir, dir));
    cr_assert(realpath(source_dir(), src));
    size_t k = 0;
    out[0] = '\0';
    for (const char *s = dir; *s; s++)
        if (*s == '/') k += (size_t)snprintf(out + k, cap - k, "../");
    snprintf(out + k, cap - k, "%s/%s", src + 1, rel);
}

Test(frontend_ok, include_merges_and_overrides) {
    char rel[PATH_MAX];
    rel_to_source("models/nets/smallcnn.json", rel, sizeof rel);
    const char *p = put("model.json",
                        "{\n  \"igrc\": 1,\n  \"name\": \"mine\",\n  \"include\": [\"%s\"],\n"
                        "  \"batch\": 16,\n  \"params\": {\"act\": \"tanh\"},\n"
                        "  \"train\": {\"lr\": 0.5}\n}\n",
                        rel);
    Module *m = load_ok(p, NULL);
    cr_expect_str_eq(m->name, "mine");
    cr_expect_eq(m->batch, 16);
    cr_expect_eq(input_of(m, "x")->type.dim[0], 16);
    cr_expect_eq(count_op(m, OP_TANH), 6, "the including file's params override");
    cr_expect_eq(count_op(m, OP_RELU), 0);
    cr_expect_eq(module_param_count(m, true), 312202);
    const Setting *lr = module_setting(m, "train.lr");
    cr_assert(lr && !lr->is_str);
    cr_expect_eq(lr->num, 0.5);
    module_free(m);

    /* -D overrides the including file. */
    const char *defs[] = {"act=sigmoid"};
    FrontendOptions o = {defs, 1, 0};
    m = load_ok(p, &o);
    cr_expect_eq(count_op(m, OP_SIGMOID), 6);
    cr_expect_eq(count_op(m, OP_TANH), 0);
    module_free(m);

    /* The repository's own model file including its network. */
    m = load_ok(model_path("models/mnist_smallcnn.json"), NULL);
    cr_expect_str_eq(m->name, "mnist_smallcnn");
    cr_expect_eq(module_param_count(m, true), 312202);
    const Setting *data = module_setting(m, "data");
    cr_assert(data && data->is_str);
    cr_expect_str_eq(data->str, "mnist");
    module_free(m);
}

Test(frontend_ok, long_chain_in_order) {
    /* Nodes listed after their inputs nest no deeper however many. */
    enum { N = 5000 };
    size_t cap = (size_t)N * 80, k = 0;
    char *nodes = malloc(cap);
    k += (size_t)snprintf(nodes + k, cap - k,
                          "{\"id\": \"n0\", \"op\": \"relu\", \"inputs\": [\"x\"]}");
    for (int i = 1; i < N; i++)
        k += (size_t)snprintf(nodes + k, cap - k,
                              ",\n{\"id\": \"n%d\", \"op\": \"tanh\", \"inputs\": [\"n%d\"]}", i,
                              i - 1);
    snprintf(nodes + k, cap - k, ",\n{\"id\": \"out\", \"op\": \"relu\", \"inputs\": [\"n%d\"]}",
             N - 1);
    const char *p = put_net("chain.json", nodes);
    free(nodes);
    Module *m = load_ok(p, NULL);
    cr_expect_eq(count_op(m, OP_TANH), N - 1);
    module_free(m);
}

Test(frontend_ok, diamond_include_is_one_definition) {
    put("lib/common.json",
        "{\"blocks\": {\"blk\": {\"inputs\": [\"x\"], \"nodes\": [{\"id\": \"o\", \"op\": \"relu\", "
        "\"inputs\": [\"x\"]}], \"output\": \"o\"}}}\n");
    put("l.json", "{\"include\": [\"lib/common.json\"], \"inputs\": {\"x\": {\"shape\": [\"B\", 4]}},"
                  " \"networks\": {\"n1\": {\"nodes\": [{\"id\": \"out\", \"block\": \"blk\", "
                  "\"inputs\": [\"x\"]}], \"output\": \"out\"}}}\n");
    put("lib/r.json", "{\"include\": [\"common.json\"], \"networks\": {\"n2\": {\"nodes\": [{\"id\": "
                      "\"out\", \"block\": \"blk\", \"inputs\": [\"x\"]}], \"output\": \"out\"}}}\n");
    const char *p = put("top.json", "{\"include\": [\"l.json\", \"lib/r.json\"], \"network\": \"n1\"}\n");
    Module *m = load_ok(p, NULL);
    cr_expect_eq(count_op(m, OP_RELU), 1);
    module_free(m);
}

static void expect_param(const Module *m, const char *name, int rank, const int64_t *dims,
                         bool trainable) {
    int i = module_find_param(m, name);
    cr_assert(i >= 0, "no parameter %s", name);
    const Param *p = &m->params[i];
    char got[128];
    type_str(&p->type, got, sizeof got);
    cr_expect_eq(p->type.rank, rank, "%s is %s", name, got);
    for (int k = 0; k < rank && k < p->type.rank; k++)
        cr_expect_eq(p->type.dim[k], dims[k], "%s is %s", name, got);
    cr_expect_eq(p->trainable, trainable, "%s trainable", name);
}

#define P(m, name, ...)                                                                  \
    do {                                                                                 \
        const int64_t dims_[] = {__VA_ARGS__};                                           \
        expect_param(m, name, (int)(sizeof dims_ / sizeof dims_[0]), dims_, true);        \
    } while (0)

Test(frontend_ok, pytorch_parameter_names) {
    Module *m = load_ok(model_path("models/nets/smallcnn.json"), NULL);
    P(m, "conv1.weight", 32, 1, 3, 3);
    P(m, "conv1.bias", 32);
    P(m, "conv2.weight", 32, 32, 3, 3);
    P(m, "conv2.bias", 32);
    P(m, "conv3.weight", 64, 32, 3, 3);
    P(m, "conv3.bias", 64);
    P(m, "conv4.weight", 64, 64, 3, 3);
    P(m, "conv4.bias", 64);
    P(m, "fc1.weight", 200, 1024);
    P(m, "fc1.bias", 200);
    P(m, "fc2.weight", 200, 200);
    P(m, "fc2.bias", 200);
    P(m, "fc3.weight", 10, 200);
    P(m, "fc3.bias", 10);
    cr_expect_eq(m->nparams, 14);
    /* Init specs: kaiming_normal for convolutions, zeros for fc3. */
    const Param *c1 = &m->params[module_find_param(m, "conv1.weight")];
    cr_expect_eq(c1->init.kind, INIT_NORMAL);
    cr_expect_float_eq(c1->init.a, 0.47140452079103168, 1e-15); /* sqrt(2/9) */
    cr_expect_eq(m->params[module_find_param(m, "fc3.weight")].init.kind, INIT_ZEROS);
    module_free(m);

    m = load_ok(model_path("models/nets/mlp.json"), NULL);
    P(m, "fc1.weight", 256, 784);
    P(m, "fc2.weight", 256, 256);
    P(m, "fc3.weight", 10, 256);
    P(m, "fc3.bias", 10);
    module_free(m);
}
