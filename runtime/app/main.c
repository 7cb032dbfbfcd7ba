/* main() of a generated executable: the compiler emits igrc_program (the
 * program text), igrc_kernels and their counts, and for --target cuda the
 * image igrc_cuda_image (runtime/cuda/cuda_abi.h) with its size; it links
 * -ligrc_rt_main -ligrc_rt. The CUDA image is a weak reference: absent
 * (NULL) in CPU-only executables. The CPU kernel table is weak too, so an
 * executable may carry only CUDA kernels. A backend with an image of its
 * own adds its symbols here, one row of images[]. */
#include <stdint.h>

#include "runtime/app/app.h"
#include "runtime/cpu/cpu_conv_dnnl.h"

extern const char igrc_program[];
extern const int64_t igrc_program_size;
extern const PKernelFn igrc_kernels[] __attribute__((weak));
extern const int32_t igrc_kernels_count __attribute__((weak));
extern const char igrc_cuda_image[] __attribute__((weak));
extern const int64_t igrc_cuda_image_size __attribute__((weak));

int main(int argc, char **argv) {
    cpu_dnnl_settle_env(argv);
    const BackendImage all[] = {
        {"cuda", igrc_cuda_image, &igrc_cuda_image_size ? igrc_cuda_image_size : 0},
    };
    BackendImage images[sizeof all / sizeof *all];
    int nimages = 0;
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        if (all[i].data && all[i].size > 0) images[nimages++] = all[i];
    BackendCode code = {igrc_kernels, &igrc_kernels_count ? (int)igrc_kernels_count : 0, images,
                        nimages};
    return igrc_app_main_code(argc, argv, igrc_program, igrc_program_size, &code);
}
