#include "bench/plot.h"

#include <math.h>
#include <stdio.h>

#include "runtime/io/png.h"

enum { W = 640, H = 480, LEFT = 70, RIGHT = 20, TOP = 20, BOTTOM = 50, FONT_SCALE = 2 };

typedef struct {
    double lo, hi, step;
    int ticks; /* number of intervals */
} Axis;

/* Rows of 3 bits, top to bottom, for "0123456789.-". */
static const uint8_t GLYPHS[12][5] = {
    {7, 5, 5, 5, 7}, {2, 6, 2, 2, 7}, {7, 1, 7, 4, 7}, {7, 1, 7, 1, 7}, {5, 5, 7, 1, 1},
    {7, 4, 7, 1, 7}, {7, 4, 7, 5, 7}, {7, 1, 1, 1, 1}, {7, 5, 7, 5, 7}, {7, 5, 7, 1, 7},
    {0, 0, 0, 0, 2}, {0, 0, 7, 0, 0}};

static void put(Image *img, int x, int y, const uint8_t rgb[3]) {
    if (x < 0 || y < 0 || x >= img->width || y >= img->height) return;
    uint8_t *p = img->pix + ((size_t)y * (size_t)img->width + (size_t)x) * 3;
    p[0] = rgb[0], p[1] = rgb[1], p[2] = rgb[2];
}

static void rect(Image *img, int x0, int y0, int w, int h, const uint8_t rgb[3]) {
    for (int y = y0; y < y0 + h; y++)
        for (int x = x0; x < x0 + w; x++) put(img, x, y, rgb);
}

static int text_width(const char *s) {
    int n = 0;
    for (; *s; s++) n++;
    return n ? n * 4 * FONT_SCALE - FONT_SCALE : 0;
}

static void text(Image *img, int x, int y, const char *s, const uint8_t rgb[3]) {
    for (; *s; s++, x += 4 * FONT_SCALE) {
        int g = *s == '.' ? 10 : *s == '-' ? 11 : *s - '0';
        if (g < 0 || g > 11) continue;
        for (int r = 0; r < 5; r++)
            for (int c = 0; c < 3; c++)
                if (GLYPHS[g][r] >> (2 - c) & 1)
                    rect(img, x + c * FONT_SCALE, y + r * FONT_SCALE, FONT_SCALE, FONT_SCALE,
                         rgb);
    }
}

/* Round tick spacing giving at most 10 intervals over [min, max]. */
static Axis axis_for(const double *v, int64_t n) {
    double mn = v[0], mx = v[0];
    for (int64_t i = 1; i < n; i++) mn = fmin(mn, v[i]), mx = fmax(mx, v[i]);
    if (mx - mn < 1e-9) mn -= 0.05, mx += 0.05;
    static const double steps[] = {0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10};
    Axis a = {0, 0, 0, 0};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        a.step = steps[i];
        a.lo = floor(mn / a.step) * a.step, a.hi = ceil(mx / a.step) * a.step;
        a.ticks = (int)lround((a.hi - a.lo) / a.step);
        if (a.ticks <= 10) break;
    }
    return a;
}

static void tick_label(const Axis *a, int i, char *buf, size_t cap) {
    int decimals = a->step < 0.1 || a->step == 0.25 ? 2 : a->step < 1 ? 1 : 0;
    double v = a->lo + i * a->step;
    snprintf(buf, cap, "%.*f", decimals, fabs(v) < 1e-12 ? 0.0 : v);
}

static int px_x(const Axis *a, double v) {
    return LEFT + (int)lround((v - a->lo) / (a->hi - a->lo) * (W - LEFT - RIGHT));
}

static int px_y(const Axis *a, double v) {
    return H - BOTTOM - (int)lround((v - a->lo) / (a->hi - a->lo) * (H - TOP - BOTTOM));
}

static void draw_axes(Image *img, const Axis *ax, const Axis *ay) {
    static const uint8_t black[3] = {0, 0, 0}, grid[3] = {225, 225, 225};
    char label[32];
    for (int i = 0; i <= ax->ticks; i++) {
        int x = px_x(ax, ax->lo + i * ax->step);
        rect(img, x, TOP, 1, H - TOP - BOTTOM, grid);
        rect(img, x, H - BOTTOM, 1, 6, black);
        tick_label(ax, i, label, sizeof label);
        text(img, x - text_width(label) / 2, H - BOTTOM + 10, label, black);
    }
    for (int i = 0; i <= ay->ticks; i++) {
        int y = px_y(ay, ay->lo + i * ay->step);
        rect(img, LEFT, y, W - LEFT - RIGHT, 1, grid);
        rect(img, LEFT - 6, y, 6, 1, black);
        tick_label(ay, i, label, sizeof label);
        text(img, LEFT - 10 - text_width(label), y - 5 * FONT_SCALE / 2, label, black);
    }
    rect(img, LEFT, TOP, 1, H - TOP - BOTTOM + 1, black);
    rect(img, LEFT, H - BOTTOM, W - LEFT - RIGHT + 1, 1, black);
}

bool plot_scatter(const char *path, const double *x, const double *y, int64_t n) {
    static const uint8_t point[3] = {31, 90, 180};
    Image img;
    char err[1024];
    if (n < 1 || !image_alloc(&img, W, H, 3, 255, err, sizeof err)) {
        fprintf(stderr, "plot: cannot draw %s: %s\n", path, n < 1 ? "no points" : err);
        return false;
    }
    Axis ax = axis_for(x, n), ay = axis_for(y, n);
    draw_axes(&img, &ax, &ay);
    for (int64_t i = 0; i < n; i++)
        rect(&img, px_x(&ax, x[i]) - 1, px_y(&ay, y[i]) - 1, 3, 3, point);
    bool ok = image_write_png(path, &img, err, sizeof err);
    if (!ok) fprintf(stderr, "plot: %s\n", err);
    image_free(&img);
    return ok;
}
