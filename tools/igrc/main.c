/* igrc: compile, check, dump and execute graph files. */
#include <stdio.h>
#include <string.h>

#include "base/rt_error.h"
#include "tools/igrc/driver.h"

static const char USAGE[] =
    "usage: igrc <command> [options]\n"
    "\n"
    "commands:\n"
    "  compile FILE compile to an executable that trains and evaluates (train, eval,\n"
    "               info); --emit ir|llvm|obj stops early\n"
    "  run FILE -- ARGS  compile into a temporary directory and run it with ARGS\n"
    "  check FILE   validate a graph file and print a summary (inputs, node shapes,\n"
    "               parameter count, FLOPs)\n"
    "  dump FILE    print the IR, as loaded or after passes (--after, --after-all)\n"
    "  exec FILE    run one entry point on tensors from a safetensors file or a data set\n"
    "  import MODEL.onnx -o NET.json  an ONNX model -> a graph file's network and its\n"
    "               weights as safetensors (docs/onnx.md)\n"
    "\n"
    "`igrc COMMAND --help` describes each command. Exit status: 0 success,\n"
    "1 runtime failure, 2 bad input or usage.\n";

static int dispatch(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(USAGE, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_BADINPUT : EXIT_OK;
    }
    if (strcmp(argv[1], "check") == 0) return cmd_check(argc - 1, argv + 1);
    if (strcmp(argv[1], "dump") == 0) return cmd_dump(argc - 1, argv + 1);
    if (strcmp(argv[1], "exec") == 0) return cmd_exec(argc - 1, argv + 1);
    if (strcmp(argv[1], "compile") == 0) return cmd_compile(argc - 1, argv + 1);
    if (strcmp(argv[1], "run") == 0) return cmd_run(argc - 1, argv + 1);
    if (strcmp(argv[1], "import") == 0) return cmd_import(argc - 1, argv + 1);
    fprintf(stderr, "igrc: unknown command '%s'\n\n%s", argv[1], USAGE);
    return EXIT_BADINPUT;
}

int main(int argc, char **argv) {
    int rc = dispatch(argc, argv);
    return !rt_flush_stdout("igrc") && rc == EXIT_OK ? EXIT_RUNTIME : rc;
}
