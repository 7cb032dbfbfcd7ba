/* main() of a generated executable: the compiler emits igrc_program (the
 * program text), igrc_kernels and their counts, and links
 * -ligrc_rt_main -ligrc_rt. */
#include <stdint.h>

#include "runtime/app.h"

extern const char igrc_program[];
extern const int64_t igrc_program_size;
extern const PKernelFn igrc_kernels[];
extern const int32_t igrc_kernels_count;

int main(int argc, char **argv) {
    return igrc_app_main(argc, argv, igrc_program, igrc_program_size, igrc_kernels,
                         (int)igrc_kernels_count);
}
