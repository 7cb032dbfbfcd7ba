/* Images in memory and their atomic PNG encoding with libpng. */
#include "runtime/io/png.h"

#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <unistd.h>

#include "base/rt_error.h"
#include "runtime/io/outfile.h"

bool image_alloc(Image *img, int width, int height, int channels, uint8_t fill, char *err,
                 size_t errcap) {
    *img = (Image){0};
    if (width < 1 || height < 1 || width > IMAGE_MAX_SIDE || height > IMAGE_MAX_SIDE)
        return rt_fail(err, errcap, "image: size %dx%d outside 1..%d", width, height,
                       IMAGE_MAX_SIDE);
    if (channels != 1 && channels != 3)
        return rt_fail(err, errcap, "image: %d channels, needs 1 or 3", channels);
    size_t bytes = (size_t)width * (size_t)height * (size_t)channels;
    uint8_t *pix = malloc(bytes);
    if (!pix) return rt_fail(err, errcap, "image: out of memory for %dx%d", width, height);
    memset(pix, fill, bytes);
    *img = (Image){width, height, channels, pix};
    return true;
}

void image_free(Image *img) {
    if (!img) return;
    free(img->pix);
    *img = (Image){0};
}

/* ---- libpng ------------------------------------------------------------- */

typedef struct {
    char msg[256];
} PngError;

/* libpng reports errors by calling this and expects it not to return. */
static void on_png_error(png_structp png, png_const_charp msg) {
    PngError *e = png_get_error_ptr(png);
    snprintf(e->msg, sizeof e->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

static bool encode(FILE *f, const Image *img, PngError *pe) {
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, pe, on_png_error,
                                              on_png_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        snprintf(pe->msg, sizeof pe->msg, "out of memory");
        return false;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return false;
    }
    png_init_io(png, f);
    int type = img->channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB;
    png_set_IHDR(png, info, (png_uint_32)img->width, (png_uint_32)img->height, 8, type,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    size_t stride = (size_t)img->width * (size_t)img->channels;
    for (int y = 0; y < img->height; y++) png_write_row(png, img->pix + (size_t)y * stride);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return true;
}

static bool check_image(const char *path, const Image *img, char *err, size_t errcap) {
    if (!img || !img->pix) return rt_fail(err, errcap, "cannot write %s: no image", path);
    if (img->width < 1 || img->height < 1 || img->width > IMAGE_MAX_SIDE ||
        img->height > IMAGE_MAX_SIDE || (img->channels != 1 && img->channels != 3))
        return rt_fail(err, errcap, "cannot write %s: bad image %dx%d with %d channels", path,
                       img->width, img->height, img->channels);
    return true;
}

bool image_write_png(const char *path, const Image *img, char *err, size_t errcap) {
    if (!path) return rt_fail(err, errcap, "image_write_png: no path given");
    if (!check_image(path, img, err, errcap)) return false;
    char target[PATH_MAX];
    if (!outfile_target(path, target, sizeof target, err, errcap)) return false;
    size_t cap = strlen(target) + 32;
    char *tmp = malloc(cap);
    if (!tmp) return rt_fail(err, errcap, "cannot write %s: out of memory", path);
    snprintf(tmp, cap, "%s.tmp.%ld", target, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        rt_fail(err, errcap, "cannot write %s: cannot create %s: %s", path, tmp, strerror(errno));
        free(tmp);
        return false;
    }
    PngError pe = {""};
    bool ok = encode(f, img, &pe);
    if (!ok) rt_fail(err, errcap, "cannot write %s: libpng: %s", path, pe.msg);
    if (fclose(f) != 0 && ok)
        ok = rt_fail(err, errcap, "cannot write %s: %s", path, strerror(errno));
    if (ok && rename(tmp, target) != 0)
        ok = rt_fail(err, errcap, "cannot write %s: cannot rename %s into place: %s", path, tmp,
                     strerror(errno));
    if (!ok) unlink(tmp);
    free(tmp);
    return ok;
}
