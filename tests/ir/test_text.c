/* IR text form: print -> parse -> print is byte-identical, parsed modules
 * equal the originals field by field, parse errors name file:line:col, and
 * the DOT export draws the expected edges. */
#define _POSIX_C_SOURCE 200809L /* mkstemp, fdopen */

#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"
#include "ir/parse.h"
#include "ir/print.h"

/* ---- field-by-field comparison ---- */

/* Same bits, except that every NaN prints as "nan" and so reads back as
 * the default NaN. */
static bool same_double(double a, double b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    return memcmp(&a, &b, sizeof a) == 0;
}

static void expect_type_eq(const Type *a, const Type *b, const char *what) {
    cr_expect(type_equal(a, b), "%s: type differs", what);
}

static void expect_attr_eq(const Attr *a, const Attr *b, const char *node) {
    cr_expect_str_eq(a->key, b->key, "%s: attr key", node);
    cr_assert_eq(a->kind, b->kind, "%s.%s: attr kind", node, a->key);
    switch (a->kind) {
    case ATTR_INT:
    case ATTR_DTYPE: cr_expect_eq(a->i, b->i, "%s.%s", node, a->key); break;
    case ATTR_FLOAT: cr_expect(same_double(a->f, b->f), "%s.%s", node, a->key); break;
    case ATTR_STR: cr_expect_str_eq(a->s, b->s, "%s.%s", node, a->key); break;
    case ATTR_INTS:
        cr_assert_eq(a->n, b->n, "%s.%s: length", node, a->key);
        for (int i = 0; i < a->n; i++)
            cr_expect_eq(a->ints[i], b->ints[i], "%s.%s[%d]", node, a->key, i);
        break;
    case ATTR_FLOATS:
        cr_assert_eq(a->n, b->n, "%s.%s: length", node, a->key);
        for (int i = 0; i < a->n; i++)
            cr_expect(same_double(a->floats[i], b->floats[i]), "%s.%s[%d]", node, a->key, i);
        break;
    }
}

static void expect_node_eq(const Node *a, const Node *b) {
    cr_expect_str_eq(a->name, b->name);
    cr_expect_eq(a->op, b->op, "%s: op", a->name);
    expect_type_eq(&a->type, &b->type, a->name);
    cr_assert_eq(a->ninputs, b->ninputs, "%s: ninputs", a->name);
    for (int i = 0; i < a->ninputs; i++)
        cr_expect_eq(a->inputs[i], b->inputs[i], "%s: input %d", a->name, i);
    cr_assert_eq(a->nattrs, b->nattrs, "%s: nattrs", a->name);
    for (int i = 0; i < a->nattrs; i++) expect_attr_eq(&a->attrs[i], &b->attrs[i], a->name);
}

static void expect_func_eq(const Function *a, const Function *b) {
    cr_expect_str_eq(a->name, b->name);
    cr_assert_eq(a->n, b->n, "func %s: node count", a->name);
    for (int i = 0; i < a->n; i++) {
        expect_node_eq(&a->nodes[i], &b->nodes[i]);
        cr_expect_eq(func_find(b, a->nodes[i].name), i, "name map of %s", a->nodes[i].name);
    }
    cr_assert_eq(a->noutputs, b->noutputs, "func %s: outputs", a->name);
    for (int i = 0; i < a->noutputs; i++) {
        cr_expect_str_eq(a->outputs[i].name, b->outputs[i].name);
        cr_expect_eq(a->outputs[i].value, b->outputs[i].value);
    }
}

static void expect_module_eq(const Module *a, const Module *b) {
    cr_expect_str_eq(a->name, b->name);
    cr_expect_eq(a->batch, b->batch);
    cr_assert_eq(a->ninputs, b->ninputs);
    for (int i = 0; i < a->ninputs; i++) {
        const InputDesc *x = &a->inputs[i], *y = &b->inputs[i];
        cr_expect_str_eq(x->name, y->name);
        expect_type_eq(&x->type, &y->type, x->name);
        cr_expect_eq(x->batched, y->batched, "%s: batched", x->name);
        cr_expect(same_double(x->lo, y->lo) && same_double(x->hi, y->hi), "%s: range", x->name);
        cr_expect_eq(x->classes, y->classes, "%s: classes", x->name);
    }
    cr_assert_eq(a->nsettings, b->nsettings);
    for (int i = 0; i < a->nsettings; i++) {
        const Setting *x = &a->settings[i], *y = &b->settings[i];
        cr_expect_str_eq(x->key, y->key);
        cr_assert_eq(x->is_str, y->is_str, "%s: kind", x->key);
        if (x->is_str)
            cr_expect_str_eq(x->str, y->str);
        else
            cr_expect(same_double(x->num, y->num), "%s: value", x->key);
    }
    cr_assert_eq(a->nparams, b->nparams);
    for (int i = 0; i < a->nparams; i++) {
        const Param *x = &a->params[i], *y = &b->params[i];
        cr_expect_str_eq(x->name, y->name);
        expect_type_eq(&x->type, &y->type, x->name);
        cr_expect_eq(x->init.kind, y->init.kind, "%s: init", x->name);
        cr_expect(same_double(x->init.a, y->init.a), "%s: init arg", x->name);
        cr_expect_eq(x->trainable, y->trainable, "%s: trainable", x->name);
    }
    cr_assert_eq(a->nfuncs, b->nfuncs);
    for (int i = 0; i < a->nfuncs; i++) expect_func_eq(a->funcs[i], b->funcs[i]);
}

/* ---- round trip ---- */

static Module *parse_or_die(const char *text) {
    Diag d;
    diag_init(&d);
    Module *m = ir_parse(text, "t.ir", &d);
    cr_assert_not_null(m, "parse failed: %s\n--- text ---\n%s", d.msg, text);
    return m;
}

/* print -> parse -> print is byte-identical and the parsed module equals m. */
static void check_round_trip(const Module *m) {
    char *s1 = ir_module_to_string(m);
    Module *m2 = parse_or_die(s1);
    char *s2 = ir_module_to_string(m2);
    cr_expect_str_eq(s2, s1);
    expect_module_eq(m, m2);
    free(s2);
    free(s1);
    module_free(m2);
}

static const int64_t D2x3[] = {2, 3};

/* Nodes with every attribute kind, special doubles, empty lists of both
 * kinds, escapes in strings and names that need quotes. */
static void add_attr_func(Module *m) {
    Function *f = module_add_func(m, "attrs and \"quotes\"");
    Type t = type_make(DT_F32, 2, D2x3);
    int x = func_add_node(m, f, OP_INPUT, "x", NULL, 0, NULL, 0, t);
    const double specials[] = {0.1, 1e-300, -0.0, INFINITY, -INFINITY, NAN, 1.0 / 3, 1e22,
                               1.0, 5e-324, 1.7976931348623157e308, -2.5, 100.0, 1e-5};
    const int64_t ints[] = {1, -2, 0, INT64_MAX, INT64_MIN};
    Attr attrs[] = {
        attr_int("i", 3),
        attr_int("neg", -2),
        attr_float("f", 1.0),
        attr_float("negzero", -0.0),
        attr_ints("ints", ints, 5),
        attr_ints("no_ints", NULL, 0),
        attr_floats("floats", specials, (int)(sizeof specials / sizeof specials[0])),
        attr_floats("no_floats", NULL, 0),
        attr_str("s", "tab\there \"q\" back\\slash\nnl \x01\x1f\x7f caf\xc3\xa9 #not-a-comment"),
        attr_str("empty", ""),
        attr_dtype("dt", DT_BOOL),
        attr_str("looks_like_dtype", "f32"),
        attr_str("weird key = 1", "v"),
    };
    int n = func_add_node(m, f, OP_CONSTANT, "odd name!", NULL, 0, attrs,
                          (int)(sizeof attrs / sizeof attrs[0]), t);
    int k = func_add_node(m, f, OP_ADD, "0", (int[]){x, n}, 2, NULL, 0, t);
    int q = func_add_node(m, f, OP_NEG, "-1e5", (int[]){k}, 1, NULL, 0, t);
    int u = func_add_node(m, f, OP_RELU, "caf\xc3\xa9", (int[]){q}, 1, NULL, 0, t);
    int e = func_add_node(m, f, OP_CAST, NULL, (int[]){u}, 1, (Attr[]){attr_dtype("dtype", DT_I32)},
                          1, type_make(DT_I32, 2, D2x3));
    func_add_output(m, f, "out put", e);
    func_add_output(m, f, "same", q);
    func_add_output(m, f, "", x);
}

/* One node of every op, with the op's minimum arity (concat gets three). */
static void add_every_op_func(Module *m) {
    Function *f = module_add_func(m, "every_op");
    Type t = type_make(DT_F32, 2, D2x3);
    func_add_node(m, f, OP_INPUT, "in", NULL, 0, NULL, 0, t);
    const int zeros[8] = {0};
    for (int op = 0; op < OP_COUNT; op++) {
        const OpInfo *oi = op_info((OpKind)op);
        int n = oi->max_inputs < 0 ? 3 : oi->min_inputs;
        func_add_node(m, f, (OpKind)op, oi->name, zeros, n, NULL, 0, t);
    }
    func_add_output(m, f, "last", f->n - 1);
}

static Module *rich_module(void) {
    Module *m = module_new("my module");
    m->batch = 32;
    InputDesc *x = module_add_input(m, "x", type_make(DT_F32, 2, D2x3));
    x->batched = true;
    x->lo = -1.5;
    x->hi = 1.0 / 3;
    InputDesc *y = module_add_input(m, "y label", type_make(DT_I32, 1, D2x3));
    y->batched = true;
    y->classes = 10;
    InputDesc *z = module_add_input(m, "z", type_scalar(DT_F64));
    z->lo = z->hi = 7.0; /* an empty but non-default range still round-trips */
    module_set_num(m, "lr", 0.1);
    module_set_num(m, "huge", INFINITY);
    module_set_num(m, "nothing", NAN);
    module_set_str(m, "optimizer", "adam");
    module_set_str(m, "path with space", "a\\b\"c\"\n");
    module_add_param(m, "layer1.0.conv1.weight", type_make(DT_F32, 2, D2x3),
                     (InitSpec){INIT_NORMAL, 0.47140452079103168}, true);
    module_add_param(m, "bn.running_mean", type_make(DT_F32, 1, D2x3), (InitSpec){INIT_ZEROS, 0},
                     false);
    module_add_param(m, "bn.running_var", type_make(DT_F32, 1, D2x3), (InitSpec){INIT_ONES, 0},
                     false);
    module_add_param(m, "fc.bias", type_make(DT_F32, 1, D2x3), (InitSpec){INIT_UNIFORM, 0.125},
                     true);
    module_add_param(m, "scalar p", type_scalar(DT_F64), (InitSpec){INIT_ZEROS, 2.0}, true);
    add_attr_func(m);
    add_every_op_func(m);
    module_add_func(m, "empty");
    return m;
}

Test(text, round_trip_rich_module) {
    Module *m = rich_module();
    check_round_trip(m);
    module_free(m);
}

Test(text, round_trip_empty_module) {
    Module *m = module_new("");
    check_round_trip(m);
    module_free(m);
}

Test(text, every_op_name_parses) {
    Module *m = module_new("ops");
    add_every_op_func(m);
    char *s = ir_module_to_string(m);
    for (int op = 0; op < OP_COUNT; op++) {
        char want[64];
        snprintf(want, sizeof want, " = %s(", op_name((OpKind)op));
        cr_expect(strstr(s, want), "missing %s", want);
    }
    Module *m2 = parse_or_die(s);
    for (int op = 0; op < OP_COUNT; op++) cr_expect_eq((int)m2->funcs[0]->nodes[op + 1].op, op);
    free(s);
    module_free(m2);
    module_free(m);
}

/* ---- the canonical text itself ---- */

#define MNIST_TEXT \
    "module @mnist_smallcnn batch=128\n" \
    "input @x : f32[128,1,28,28] batched range=[0.0, 1.0]\n" \
    "input @y : i32[128] batched classes=10\n" \
    "setting @epochs = 2.0\n" \
    "setting @optimizer = \"adam\"\n" \
    "param @conv1.weight : f32[32,1,3,3] init=normal(0.4714045207910317) trainable\n" \
    "param @bn1.running_mean : f32[64] init=zeros state\n" \
    "\n" \
    "func @predict {\n" \
    "  %x = input() : f32[128,1,28,28]\n" \
    "  %conv1.weight = param() {ref=\"conv1.weight\"} : f32[32,1,3,3]\n" \
    "  %conv1.conv = conv2d(%x, %conv1.weight) {padding=[0,0], stride=[1,1]} : " \
    "f32[128,32,26,26]\n" \
    "  %c = constant() {value=0.0} : f32[]\n" \
    "  return logits=%conv1.conv, probs=%c\n" \
    "}\n" \
    "\n" \
    "func @none {\n" \
    "  return\n" \
    "}\n"

static Module *mnist_module(void) {
    Module *m = module_new("mnist_smallcnn");
    m->batch = 128;
    InputDesc *x = module_add_input(m, "x", type_make(DT_F32, 4, (int64_t[]){128, 1, 28, 28}));
    x->batched = true;
    x->hi = 1.0;
    InputDesc *y = module_add_input(m, "y", type_make(DT_I32, 1, (int64_t[]){128}));
    y->batched = true;
    y->classes = 10;
    module_set_num(m, "epochs", 2);
    module_set_str(m, "optimizer", "adam");
    Type wt = type_make(DT_F32, 4, (int64_t[]){32, 1, 3, 3});
    module_add_param(m, "conv1.weight", wt, (InitSpec){INIT_NORMAL, sqrt(2.0 / 9)}, true);
    module_add_param(m, "bn1.running_mean", type_make(DT_F32, 1, (int64_t[]){64}),
                     (InitSpec){INIT_ZEROS, 0}, false);
    Function *f = module_add_func(m, "predict");
    int xv = func_add_node(m, f, OP_INPUT, "x", NULL, 0, NULL, 0, x->type);
    int wv = func_add_node(m, f, OP_PARAM, "conv1.weight", NULL, 0,
                           (Attr[]){attr_str("ref", "conv1.weight")}, 1, wt);
    int64_t zero2[] = {0, 0}, one2[] = {1, 1};
    Attr cattrs[] = {attr_ints("stride", one2, 2), attr_ints("padding", zero2, 2)};
    int cv = func_add_node(m, f, OP_CONV2D, "conv1.conv", (int[]){xv, wv}, 2, cattrs, 2,
                           type_make(DT_F32, 4, (int64_t[]){128, 32, 26, 26}));
    int k = func_add_node(m, f, OP_CONSTANT, "c", NULL, 0, (Attr[]){attr_float("value", 0)}, 1,
                          type_scalar(DT_F32));
    func_add_output(m, f, "logits", cv);
    func_add_output(m, f, "probs", k);
    module_add_func(m, "none");
    return m;
}

Test(text, canonical_text) {
    Module *m = mnist_module();
    char *s = ir_module_to_string(m);
    cr_expect_str_eq(s, MNIST_TEXT);
    free(s);
    check_round_trip(m);
    module_free(m);
}

Test(text, print_module_and_function_to_file) {
    Module *m = mnist_module();
    FILE *fp = tmpfile();
    cr_assert_not_null(fp);
    ir_print_module(m, fp);
    ir_print_function(m, m->funcs[1], fp);
    long n = ftell(fp);
    rewind(fp);
    char buf[4096] = {0};
    cr_assert_eq(fread(buf, 1, sizeof buf - 1, fp), (size_t)n);
    fclose(fp);
    cr_expect_str_eq(buf, MNIST_TEXT "func @none {\n  return\n}\n");
    module_free(m);
}

/* Hand-written text: comments, blank lines, extra blanks, CRLF, flags in
 * another order, and numbers that are not in canonical form. */
Test(text, lenient_input_reads_canonically) {
    const char *text = "# leading comment\n"
                       "\n"
                       "   # indented comment\n"
                       "module @mnist_smallcnn   batch = 128   # trailing comment\r\n"
                       "setting @epochs = 2\n"
                       "input @x : f32[ 128 , 1,28,28 ] range = [ 0 , 1e0 ] batched\n"
                       "input @y :i32[128] classes=10 batched\n"
                       "param @conv1.weight : f32[32,1,3,3] init=normal(0.47140452079103168) "
                       "trainable\n"
                       "setting @optimizer = \"adam\"\n"
                       "param @bn1.running_mean : f32[64] init=zeros state\n"
                       "func @predict {\n"
                       "\n"
                       "# a comment inside a function\n"
                       "%x=input():f32[128,1,28,28]\n"
                       "  %conv1.weight = param() { ref = \"conv1.weight\" } : f32[32,1,3,3]\n"
                       "  %conv1.conv = conv2d( %x ,%conv1.weight ) {stride=[1, 1],padding=[0 ,0]}"
                       " : f32[128,32,26,26]\n"
                       "  %c = constant() {value=0e0} : f32[]\n"
                       "  return logits = %conv1.conv ,probs=%c\n"
                       "}\n"
                       "func @none {\n  return # nothing\n}";
    Module *m = parse_or_die(text);
    Module *want = mnist_module();
    expect_module_eq(want, m);
    char *s = ir_module_to_string(m);
    cr_expect_str_eq(s, MNIST_TEXT);
    free(s);
    module_free(want);
    module_free(m);
}

/* ---- doubles ---- */

Test(text, format_double_cases) {
    struct {
        double v;
        const char *want;
    } cases[] = {
        {0.1, "0.1"},
        {1e-300, "1e-300"},
        {-0.0, "-0.0"},
        {0.0, "0.0"},
        {INFINITY, "inf"},
        {-INFINITY, "-inf"},
        {NAN, "nan"},
        {-NAN, "nan"},
        {1.0 / 3, "0.3333333333333333"},
        {1e22, "1e+22"},
        {1.0, "1.0"},
        {-2.0, "-2.0"},
        {100.0, "100.0"},
        {1e-5, "1e-05"},
        {0.1 + 0.2, "0.30000000000000004"},
        {5e-324, "4.94065645841247e-324"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
        {123456789012345.0, "123456789012345.0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[32];
        cr_expect_str_eq(ir_format_double(cases[i].v, buf), cases[i].want, "case %zu", i);
    }
}

/* Random bit patterns: the text always reads back to the same bits and
 * never looks like an integer. */
Test(text, format_double_round_trips) {
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 100000; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        double v;
        memcpy(&v, &s, sizeof v);
        if (isnan(v)) continue;
        char buf[32];
        const char *t = ir_format_double(v, buf);
        double back = strtod(t, NULL);
        cr_assert(memcmp(&back, &v, sizeof v) == 0, "%s", t);
        cr_assert(strpbrk(t, ".en"), "%s", t);
        cr_assert_lt(strlen(t), 32);
    }
}

/* ---- errors ---- */

/* Parses text expecting failure; the message must equal want exactly. */
static void expect_error(const char *text, const char *want) {
    Diag d;
    diag_init(&d);
    Module *m = ir_parse(text, "bad.ir", &d);
    cr_expect_null(m, "parsed but should fail with: %s", want);
    module_free(m);
    cr_expect_eq(d.code, EXIT_BADINPUT);
    cr_expect_str_eq(d.msg, want);
}

#define HDR "module @m batch=1\n"

Test(text, error_unknown_value) {
    expect_error(HDR "func @f {\n  %a = neg(%b) : f32[]\n  %b = input() : f32[]\n  return\n}\n",
                 "bad.ir:3:12: unknown value %b");
    expect_error(HDR "func @f {\n  %a = input() : f32[]\n  return r=%\"no such\"\n}\n",
                 "bad.ir:4:12: unknown value %\"no such\"");
}

Test(text, error_values_are_per_function) {
    expect_error(HDR "func @f {\n  %a = input() : f32[]\n  return\n}\n"
                     "func @g {\n  %b = neg(%a) : f32[]\n  return\n}\n",
                 "bad.ir:7:12: unknown value %a");
}

Test(text, error_unknown_op) {
    expect_error(HDR "func @f {\n  %x = input() : f32[2]\n  %y = conv2(%x, %x) : f32[2]\n"
                     "  return\n}\n",
                 "bad.ir:4:8: unknown op 'conv2' (did you mean 'conv2d'?)");
    expect_error(HDR "func @f {\n  %x = relux(%x) : f32[2]\n  return\n}\n",
                 "bad.ir:3:8: unknown op 'relux' (did you mean 'relu'?)");
}

Test(text, error_arity) {
    expect_error(HDR "func @f {\n  %x = input() : f32[2]\n  %y = add(%x) : f32[2]\n  return\n}\n",
                 "bad.ir:4:8: op 'add' takes 2 operands, got 1");
    expect_error(HDR "func @f {\n  %x = input(%x) : f32[2]\n  return\n}\n",
                 "bad.ir:3:14: unknown value %x");
    expect_error(HDR "func @f {\n  %x = input() : f32[2]\n  %y = neg() : f32[2]\n  return\n}\n",
                 "bad.ir:4:8: op 'neg' takes 1 operand, got 0");
    expect_error(HDR "func @f {\n  %x = input() : f32[2]\n  %y = input(%x) : f32[2]\n  return\n}\n",
                 "bad.ir:4:8: op 'input' takes 0 operands, got 1");
    expect_error(HDR "func @f {\n  %x = input() : f32[2]\n  %y = concat() {axis=0} : f32[2]\n"
                     "  return\n}\n",
                 "bad.ir:4:8: op 'concat' takes at least 1 operand, got 0");
    expect_error(HDR "func @f {\n  %x = input() : f32[2]\n  %y = linear(%x, %x, %x, %x) : f32[2]\n"
                     "  return\n}\n",
                 "bad.ir:4:8: op 'linear' takes 2 to 3 operands, got 4");
}

Test(text, error_duplicates) {
    expect_error(HDR "func @f {\n  %x = input() : f32[2]\n  %x = neg(%x) : f32[2]\n  return\n}\n",
                 "bad.ir:4:3: duplicate value %x");
    expect_error(HDR "func @f {\n  %x = input() : f32[2]\n  %y = neg(%x) {a=1, b=2, a=3} : f32[2]\n"
                     "  return\n}\n",
                 "bad.ir:4:27: duplicate attribute a");
    expect_error(HDR "param @w : f32[] init=zeros state\nparam @w : f32[] init=ones state\n",
                 "bad.ir:3:7: duplicate param @w");
    expect_error(HDR "func @f {\n  return\n}\nfunc @f {\n  return\n}\n",
                 "bad.ir:5:6: duplicate func @f");
    expect_error(HDR "input @x : f32[]\ninput @x : f32[]\n", "bad.ir:3:7: duplicate input @x");
    expect_error(HDR "setting @k = 1.0\nsetting @k = \"s\"\n", "bad.ir:3:9: duplicate setting @k");
}

Test(text, error_header) {
    expect_error("", "bad.ir:1:1: expected 'module', got end of file");
    expect_error("# only a comment\n\nfunc @f {\n", "bad.ir:3:1: expected 'module', got 'func'");
    expect_error("module m\n", "bad.ir:1:8: expected '@', got 'm'");
    expect_error("module @m batch=x\n", "bad.ir:1:17: expected an integer, got 'x'");
    expect_error("module @m batch=99999999999999999999\n",
                 "bad.ir:1:17: integer '99999999999999999999' out of range");
    expect_error(HDR "module @n\n", "bad.ir:2:1: second 'module' header");
    expect_error(HDR "  function @f {\n",
                 "bad.ir:2:3: expected input, setting, param or func, got 'function'");
}

Test(text, error_types) {
    expect_error(HDR "input @x : f16[2]\n",
                 "bad.ir:2:12: unknown dtype 'f16' (expected f32, f64, i32 or bool)");
    expect_error(HDR "input @x : f32[1,2,3,4,5,6,7]\n", "bad.ir:2:28: rank above 6");
    expect_error(HDR "input @x : f32[2.5]\n", "bad.ir:2:16: expected an integer, got '2.5'");
    expect_error(HDR "input @x : f32[2\n", "bad.ir:2:17: expected ']', got end of line");
    expect_error(HDR "input @x : f32[2] sorted\n", "bad.ir:2:19: unknown input flag 'sorted'");
}

Test(text, error_strings) {
    expect_error(HDR "setting @s = \"abc\n", "bad.ir:2:14: unterminated string");
    expect_error(HDR "setting @s = \"a\\qb\"\n", "bad.ir:2:16: unknown escape '\\q' in string");
    expect_error(HDR "setting @s = \"a\\x4\"\n", "bad.ir:2:16: \\x needs two hex digits");
    expect_error(HDR "setting @s = \"a\\x00\"\n", "bad.ir:2:16: \\x00 is not allowed in strings");
}

Test(text, error_attributes) {
    const char *pre = HDR "func @f {\n  %x = input() : f32[2]\n";
    char buf[512];
    snprintf(buf, sizeof buf, "%s  %%y = neg(%%x) {a=[1, 2.5]} : f32[2]\n  return\n}\n", pre);
    expect_error(buf,
                 "bad.ir:4:23: expected an integer, got '2.5' (float lists are written f[...])");
    snprintf(buf, sizeof buf, "%s  %%y = neg(%%x) {a=foo} : f32[2]\n  return\n}\n", pre);
    expect_error(buf, "bad.ir:4:19: bad attribute value 'foo'");
    snprintf(buf, sizeof buf, "%s  %%y = neg(%%x) {a=1.5x} : f32[2]\n  return\n}\n", pre);
    expect_error(buf, "bad.ir:4:19: expected a number, got '1.5x'");
    snprintf(buf, sizeof buf, "%s  %%y = neg(%%x) {a=1 : f32[2]\n  return\n}\n", pre);
    expect_error(buf, "bad.ir:4:21: expected '}', got ':'");
    snprintf(buf, sizeof buf, "%s  %%y = neg(%%x) {=1} : f32[2]\n  return\n}\n", pre);
    expect_error(buf, "bad.ir:4:17: expected an attribute name, got '='");
}

Test(text, error_structure) {
    expect_error(HDR "func @f {\n  %x = input() : f32[2]\n",
                 "bad.ir:4:1: unexpected end of file in func (missing '}')");
    expect_error(HDR "func @f {\n  %x = input() : f32[2]\n}\n",
                 "bad.ir:4:1: expected 'return' before '}'");
    expect_error(HDR "func @f {\n  %x = input() : f32[2] extra\n  return\n}\n",
                 "bad.ir:3:25: expected end of line, got 'e'");
    expect_error(HDR "func @f {\n  %x = input() : f32[2]\n  return\n  %y = neg(%x) : f32[2]\n}\n",
                 "bad.ir:5:3: expected '}', got '%'");
    expect_error(HDR "func @f {\n  %\"\" = input() : f32[2]\n  return\n}\n",
                 "bad.ir:3:3: empty value name");
    expect_error(HDR "func @f {\n  % x = input() : f32[2]\n  return\n}\n",
                 "bad.ir:3:4: expected a value name, got ' '");
    expect_error(HDR "func @f {\n  x = input() : f32[2]\n  return\n}\n",
                 "bad.ir:3:3: expected a node or 'return', got 'x'");
    expect_error(HDR "func @f {\n  %x = input() f32[2]\n  return\n}\n",
                 "bad.ir:3:16: expected ':', got 'f'");
}

Test(text, error_params) {
    expect_error(HDR "param @w : f32[] init=gaussian(1.0) trainable\n",
                 "bad.ir:2:23: unknown init 'gaussian' (expected zeros, ones, uniform or normal)");
    expect_error(HDR "param @w : f32[] init=normal trainable\n",
                 "bad.ir:2:29: init normal needs an argument");
    expect_error(HDR "param @w : f32[] init=ones frozen\n",
                 "bad.ir:2:28: expected 'trainable' or 'state', got 'frozen'");
    expect_error(HDR "param @w : f32[] zeros\n", "bad.ir:2:18: expected 'init', got 'zeros'");
}

/* ---- files ---- */

Test(text, parse_file) {
    char path[] = "/tmp/igrc_text_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    FILE *fp = fdopen(fd, "w");
    fputs(MNIST_TEXT, fp);
    fclose(fp);
    Diag d;
    diag_init(&d);
    Module *m = ir_parse_file(path, &d);
    cr_assert_not_null(m, "%s", d.msg);
    Module *want = mnist_module();
    expect_module_eq(want, m);
    module_free(want);
    module_free(m);

    fp = fopen(path, "w");
    fputs(HDR "func @f {\n  %y = neg(%x) : f32[]\n  return\n}\n", fp);
    fclose(fp);
    diag_init(&d);
    cr_expect_null(ir_parse_file(path, &d));
    char want_msg[256];
    snprintf(want_msg, sizeof want_msg, "%s:3:12: unknown value %%x", path);
    cr_expect_str_eq(d.msg, want_msg);

    fp = fopen(path, "wb");
    fwrite(HDR "\0x", 1, sizeof HDR + 1, fp);
    fclose(fp);
    diag_init(&d);
    cr_expect_null(ir_parse_file(path, &d));
    snprintf(want_msg, sizeof want_msg, "%s:2:1: NUL byte in file", path);
    cr_expect_str_eq(d.msg, want_msg);
    remove(path);
}

Test(text, parse_file_missing) {
    Diag d;
    diag_init(&d);
    cr_expect_null(ir_parse_file("/nonexistent/igrc/model.ir", &d));
    cr_expect_eq(d.code, EXIT_BADINPUT);
    cr_expect_str_eq(d.msg, "cannot open /nonexistent/igrc/model.ir: No such file or directory");
}

/* ---- DOT ---- */

static char *dot_of(const Module *m, const Function *f) {
    FILE *fp = tmpfile();
    cr_assert_not_null(fp);
    ir_write_dot(m, f, fp);
    long n = ftell(fp);
    rewind(fp);
    char *s = calloc((size_t)n + 1, 1);
    cr_assert_eq(fread(s, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    return s;
}

Test(text, dot_edges) {
    Module *m = mnist_module();
    Function *f = m->funcs[0];
    f->nodes[2].name = "conv \"1\"";  /* quotes in a label must be escaped */
    char *s = dot_of(m, f);
    const char *want[] = {
        "digraph \"predict\" {\n",
        "  n0 [label=\"x\\ninput\\nf32[128,1,28,28]\", shape=invhouse];\n",
        "  n1 [label=\"conv1.weight\\nparam\\nf32[32,1,3,3]\", shape=box];\n",
        ("  n2 [label=\"conv \\\"1\\\"\\nconv2d\\nf32[128,32,26,26]\", shape=ellipse, "
         "peripheries=2];\n"),
        "  n0 -> n2;\n",
        "  n1 -> n2;\n",
        "  out0 [label=\"logits\", shape=plaintext];\n",
        "  n2 -> out0 [style=dashed];\n",
        "  n3 -> out1 [style=dashed];\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_expect(strstr(s, want[i]), "missing %s in:\n%s", want[i], s);
    cr_expect(!strstr(s, "n3 -> n2"));
    size_t len = strlen(s);
    cr_expect(len >= 2 && strcmp(s + len - 2, "}\n") == 0);
    char *again = dot_of(m, f);
    cr_expect_str_eq(again, s, "DOT output is deterministic");
    free(again);
    free(s);
    module_free(m);
}
