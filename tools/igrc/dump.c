/* igrc dump: the IR as loaded, or after passes. */
#include <stdio.h>
#include <string.h>

#include "ir/print.h"
#include "tools/igrc/driver.h"

static const char HELP[] =
    "usage: igrc dump FILE [--after PASS | --after-all] [--format text|dot]\n"
    "                 [--dump-dir DIR] [--verify-each] [--disable PASS,... | --passes PASS,...]\n"
    "                 [--time-passes] [-D key=value]... [--batch N]\n"
    "\n"
    "Prints the IR of FILE (graph file or .ir text). Without --after it is the IR\n"
    "as the frontend built it; --after PASS runs the pipeline up to PASS and prints\n"
    "the result; --after-all prints after every pass (with --dump-dir, one file per\n"
    "pass named NNN.<pass>.ir). --passes runs exactly the listed passes, in that\n"
    "order (a pass test's way to run one pass alone), and prints the result.\n"
    "--format dot writes Graphviz instead of text.\n";

int cmd_dump(int argc, char **argv) {
    CommonArgs a = {0};
    const char *after = NULL, *format = "text";
    for (int i = 1; i < argc; i++) {
        int r = common_option(&a, argc, argv, &i);
        if (r < 0) return EXIT_BADINPUT;
        if (r) continue;
        const char *o = argv[i];
        if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) return fputs(HELP, stdout), EXIT_OK;
        if ((strcmp(o, "--after") == 0 || strcmp(o, "--format") == 0) && i + 1 < argc) {
            *(o[2] == 'a' ? &after : &format) = argv[++i];
        } else if (strcmp(o, "--after-all") == 0) {
            a.pipe.dump_after_all = true;
        } else if (o[0] == '-' || a.file) {
            return usage_error("dump", "unexpected argument '%s'", o);
        } else {
            a.file = o;
        }
    }
    if (!a.file) return usage_error("dump", "no file given");
    if (strcmp(format, "text") && strcmp(format, "dot"))
        return usage_error("dump", "--format must be text or dot, got '%s'", format);
    a.pipe.dump_dot = strcmp(format, "dot") == 0;
    if (after) {
        a.pipe.dump_after = after;
        if (!a.pipe.stop_after) a.pipe.stop_after = after;
    }
    Diag d;
    diag_init(&d);
    Module *m = load_module(&a, &d);
    if (!m) return report(&d);
    bool run = after || a.pipe.dump_after_all || a.pipe.dump_after || a.pipe.stop_after ||
               a.pipe.verify_each || a.pipe.timings || a.pipe.disable || a.pipe.passes;
    if (run && !pipeline_run(m, &a.pipe, &d)) {
        module_free(m);
        return report(&d);
    }
    /* as loaded, or after exactly --passes when no dump was asked for */
    bool print = !run || (a.pipe.passes && !after && !a.pipe.dump_after_all && !a.pipe.dump_after);
    if (print && a.pipe.dump_dot)
        for (int i = 0; i < m->nfuncs; i++) ir_write_dot(m, m->funcs[i], stdout);
    else if (print)
        ir_print_module(m, stdout);
    module_free(m);
    return EXIT_OK;
}
