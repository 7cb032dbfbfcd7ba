/* Program text shared by the CUDA plan and runner tests: a loop body `outer`
 * that loops `inner` 3 times, and `inner`, which runs kernel 0 (c + w + trip
 * count) over 4 elements. A test's main function loops `outer`. */
#ifndef IGRC_TESTS_RUNTIME_LOOP_FIXTURE_H
#define IGRC_TESTS_RUNTIME_LOOP_FIXTURE_H

#define NESTED_LOOP_FUNCS                          \
    "func outer arena 256\n"                       \
    "  in t i32 []\n"                              \
    "  in c f32 [4]\n"                             \
    "  in w f32 [4]\n"                             \
    "  out n f32 [4] a0\n"                         \
    "  loop inner 3 16 a0 i1 i2 # while_inner\n"   \
    "end\n"                                        \
    "func inner arena 256\n"                       \
    "  in t i32 []\n"                              \
    "  in c f32 [4]\n"                             \
    "  in w f32 [4]\n"                             \
    "  out n f32 [4] a64\n"                        \
    "  kernel 0 4 1 a64 i1 i2 i0 # add\n"          \
    "end\n"

#endif
