/* PNG output: files read back with libpng, the diverging colormap, the strip
 * layout, and failures that leave no file behind. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/io/png.h"
#include "tests/common/scratch.h"

TestSuite(png, .init = scratch_setup, .fini = scratch_teardown);

/* Reads path with libpng's simplified API, as 8-bit gray or RGB. */
static Image read_png(const char *path, int channels) {
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    cr_assert(png_image_begin_read_from_file(&pi, path), "%s: %s", path, pi.message);
    cr_assert_eq(PNG_IMAGE_PIXEL_CHANNELS(pi.format), channels, "stored channels");
    pi.format = channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
    Image img;
    cr_assert(image_alloc(&img, (int)pi.width, (int)pi.height, channels, 0, NULL, 0));
    cr_assert(png_image_finish_read(&pi, NULL, img.pix, 0, NULL), "%s", pi.message);
    return img;
}

static void assert_same(const Image *a, const Image *b) {
    cr_assert(a->width == b->width && a->height == b->height && a->channels == b->channels,
              "%dx%dx%d vs %dx%dx%d", a->width, a->height, a->channels, b->width, b->height,
              b->channels);
    size_t n = (size_t)a->width * a->height * a->channels;
    for (size_t i = 0; i < n; i++) cr_assert_eq(a->pix[i], b->pix[i], "byte %zu", i);
}

static int entries_in(const char *dir) {
    DIR *d = opendir(dir);
    cr_assert(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

static void round_trip(int channels) {
    Image img;
    cr_assert(image_alloc(&img, 37, 11, channels, 0, NULL, 0));
    size_t n = (size_t)37 * 11 * channels;
    for (size_t i = 0; i < n; i++) img.pix[i] = (uint8_t)(i * 7 + i / 5);
    const char *path = in_dir("rt.png");
    char err[512] = "";
    cr_assert(image_write_png(path, &img, err, sizeof err), "%s", err);
    Image back = read_png(path, channels);
    assert_same(&img, &back);
    cr_assert_eq(entries_in(g_dir), 1, "only the PNG, no temporary file");
    image_free(&img);
    image_free(&back);
}

Test(png, gray_round_trip) { round_trip(1); }
Test(png, rgb_round_trip) { round_trip(3); }

static void assert_rgb(const uint8_t *px, int r, int g, int b, const char *what) {
    cr_assert(px[0] == r && px[1] == g && px[2] == b, "%s: (%d,%d,%d), want (%d,%d,%d)", what,
              px[0], px[1], px[2], r, g, b);
}

Test(png, diverging_colormap) {
    uint8_t c[3];
    image_diverging_rgb(0, 3, c);
    assert_rgb(c, 255, 255, 255, "zero");
    image_diverging_rgb(3, 3, c);
    assert_rgb(c, 255, 0, 0, "max");
    image_diverging_rgb(-3, 3, c);
    assert_rgb(c, 0, 0, 255, "-max");
    image_diverging_rgb(-1.5f, 3, c); /* fade 255 * 0.5 = 127.5, rounded to even */
    assert_rgb(c, 128, 128, 255, "-max/2");
    image_diverging_rgb(9, 3, c);
    assert_rgb(c, 255, 0, 0, "clamped");
    image_diverging_rgb(0, 0, c);
    assert_rgb(c, 255, 255, 255, "all-zero map");
}

static const uint8_t *at(const Image *img, int x, int y) {
    return img->pix + ((size_t)y * img->width + x) * 3;
}

Test(png, strip_layout_and_scaling) {
    float gray[] = {0, 1, 0.5f, 0.25f};  /* 2x2 image */
    float attr[] = {1, -2, 0, 0.5f};     /* max |v| 2 */
    float rgb[] = {1, 0, 0, 0,           /* R plane */
                   0, 1, 0, 0,           /* G plane */
                   0, 0, 1, 0};          /* B plane */
    float attr3[] = {1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, -4}; /* summed: 2, 0, 0, -4 */
    Panel ps[] = {{PANEL_IMAGE, gray, 1, 2, 2}, {PANEL_ATTRIBUTION, attr, 1, 2, 2},
                  {PANEL_IMAGE, rgb, 3, 2, 2}, {PANEL_ATTRIBUTION, attr3, 3, 2, 2}};
    Image img;
    char err[256] = "";
    cr_assert(image_render_strip(ps, 4, 3, &img, err, sizeof err), "%s", err);
    int pw = 6, step = pw + IMAGE_STRIP_GAP;
    cr_assert_eq(img.width, 4 * pw + 3 * IMAGE_STRIP_GAP);
    cr_assert_eq(img.height, 6);
    for (int dy = 0; dy < 3; dy++)
        for (int dx = 0; dx < 3; dx++) { /* every 3x3 block is one source pixel */
            assert_rgb(at(&img, dx, dy), 0, 0, 0, "gray (0,0)");
            assert_rgb(at(&img, 3 + dx, dy), 255, 255, 255, "gray (1,0)");
            assert_rgb(at(&img, dx, 3 + dy), 128, 128, 128, "gray (0,1)");
            assert_rgb(at(&img, 3 + dx, 3 + dy), 64, 64, 64, "gray (1,1)");
        }
    for (int g = 0; g < IMAGE_STRIP_GAP; g++)
        for (int y = 0; y < 6; y++) assert_rgb(at(&img, pw + g, y), 255, 255, 255, "gap");
    assert_rgb(at(&img, step, 0), 255, 128, 128, "attr 1 of 2");
    assert_rgb(at(&img, step + 3, 2), 0, 0, 255, "attr -2");
    assert_rgb(at(&img, step, 5), 255, 255, 255, "attr 0");
    assert_rgb(at(&img, step + 5, 5), 255, 191, 191, "attr 0.5 of 2");
    assert_rgb(at(&img, 2 * step, 0), 255, 0, 0, "rgb red");
    assert_rgb(at(&img, 2 * step + 3, 0), 0, 255, 0, "rgb green");
    assert_rgb(at(&img, 2 * step, 3), 0, 0, 255, "rgb blue");
    assert_rgb(at(&img, 3 * step, 0), 255, 128, 128, "channels summed: 2 of 4");
    assert_rgb(at(&img, 3 * step + 3, 3), 0, 0, 255, "channels summed: -4");
    image_free(&img);
}

Test(png, strip_file_matches_render) {
    float a[28 * 28], b[28 * 28];
    for (int i = 0; i < 28 * 28; i++) a[i] = (float)(i % 29) / 28.0f, b[i] = sinf((float)i);
    Panel ps[] = {{PANEL_IMAGE, a, 1, 28, 28}, {PANEL_ATTRIBUTION, b, 1, 28, 28}};
    const char *path = in_dir("strip.png");
    char err[512] = "";
    cr_assert(image_write_strip_png(path, ps, 2, 4, err, sizeof err), "%s", err);
    Image want, got = read_png(path, 3);
    cr_assert(image_render_strip(ps, 2, 4, &want, err, sizeof err), "%s", err);
    cr_assert_eq(got.width, 2 * 112 + IMAGE_STRIP_GAP);
    assert_same(&want, &got);
    image_free(&want);
    image_free(&got);
}

Test(png, unwritable_path_fails_and_leaves_no_file) {
    Image img;
    cr_assert(image_alloc(&img, 4, 4, 1, 9, NULL, 0));
    char path[600], err[1024] = "";
    snprintf(path, sizeof path, "%s/missing/x.png", g_dir);
    cr_assert_not(image_write_png(path, &img, err, sizeof err));
    cr_assert(strstr(err, path) && strstr(err, "No such file"), "%s", err);
    struct stat sb;
    cr_assert_neq(stat(path, &sb), 0);
    /* A directory in the way is refused before anything is written. */
    const char *dir = in_dir("taken.png");
    cr_assert_eq(mkdir(dir, 0777), 0);
    cr_assert_not(image_write_png(dir, &img, err, sizeof err));
    cr_assert(strstr(err, dir) && strstr(err, "it is a directory; refusing to replace it"), "%s",
              err);
    cr_assert_eq(entries_in(g_dir), 1, "only the directory is left");
    image_free(&img);
}

Test(png, bad_panels) {
    float v[4] = {0, 1, NAN, 0}, w[6] = {0};
    Panel ps[] = {{PANEL_IMAGE, w, 1, 2, 3}, {PANEL_ATTRIBUTION, v, 1, 2, 2}};
    Image img;
    char err[256] = "";
    cr_assert_not(image_render_strip(ps, 2, 2, &img, err, sizeof err));
    cr_assert(strstr(err, "panel 1 is 2x2, panel 0 is 3x2"), "%s", err);
    cr_assert_not(image_render_strip(&ps[1], 1, 2, &img, err, sizeof err));
    cr_assert(strstr(err, "panel 0 value 2 is nan"), "%s", err);
    cr_assert_not(image_render_strip(ps, 1, 0, &img, err, sizeof err));
    cr_assert(strstr(err, "scale 0"), "%s", err);
    cr_assert_not(image_write_strip_png(in_dir("no.png"), &ps[1], 1, 2, err, sizeof err));
    cr_assert(strstr(err, "no.png: image strip: panel 0 value 2 is nan"), "%s", err);
    cr_assert_eq(entries_in(g_dir), 0);
}
