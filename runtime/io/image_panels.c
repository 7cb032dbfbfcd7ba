/* Attribution figures: panels (images and signed maps) rendered side by side
 * into one RGB image (declared in runtime/io/png.h). */
#include <math.h>
#include <stdlib.h>

#include "base/rt_error.h"
#include "runtime/io/png.h"

static uint8_t to_byte(float v) {
    if (!(v > 0)) return 0;
    if (v >= 1) return 255;
    return (uint8_t)lrintf(v * 255.0f);
}

void image_diverging_rgb(float v, float maxabs, uint8_t rgb[3]) {
    float t = maxabs > 0 ? v / maxabs : 0;
    if (t > 1) t = 1;
    if (t < -1) t = -1;
    uint8_t fade = to_byte(1 - fabsf(t)); /* the other two channels fade to 0 */
    rgb[0] = t < 0 ? fade : 255;
    rgb[1] = fade;
    rgb[2] = t > 0 ? fade : 255;
}

static size_t panel_plane(const Panel *p) { return (size_t)p->height * (size_t)p->width; }

static bool check_panels(const Panel *ps, int n, int scale, char *err, size_t errcap) {
    if (!ps || n < 1) return rt_fail(err, errcap, "image strip: no panels");
    if (scale < 1 || scale > 64)
        return rt_fail(err, errcap, "image strip: scale %d outside 1..64", scale);
    for (int i = 0; i < n; i++) {
        const Panel *p = &ps[i];
        if (!p->data) return rt_fail(err, errcap, "image strip: panel %d has no data", i);
        if (p->channels != 1 && p->channels != 3)
            return rt_fail(err, errcap, "image strip: panel %d has %d channels, needs 1 or 3", i,
                           p->channels);
        if (p->height != ps[0].height || p->width != ps[0].width || p->height < 1 ||
            p->width < 1)
            return rt_fail(err, errcap, "image strip: panel %d is %dx%d, panel 0 is %dx%d", i,
                           p->width, p->height, ps[0].width, ps[0].height);
        size_t count = panel_plane(p) * (size_t)p->channels;
        for (size_t j = 0; j < count; j++)
            if (!isfinite(p->data[j]))
                return rt_fail(err, errcap, "image strip: panel %d value %zu is %g", i, j,
                               (double)p->data[j]);
    }
    return true;
}

/* The colour of source pixel k (row-major within a plane) of panel p. */
static void panel_rgb(const Panel *p, size_t k, float maxabs, uint8_t rgb[3]) {
    size_t plane = panel_plane(p);
    if (p->kind == PANEL_ATTRIBUTION) {
        float s = 0;
        for (int c = 0; c < p->channels; c++) s += p->data[c * plane + k];
        image_diverging_rgb(s, maxabs, rgb);
    } else {
        for (int c = 0; c < 3; c++)
            rgb[c] = to_byte(p->data[(p->channels == 3 ? c : 0) * plane + k]);
    }
}

static float panel_maxabs(const Panel *p) {
    float m = 0;
    size_t plane = panel_plane(p);
    for (size_t k = 0; k < plane; k++) {
        float s = 0;
        for (int c = 0; c < p->channels; c++) s += p->data[c * plane + k];
        if (fabsf(s) > m) m = fabsf(s);
    }
    return m;
}

static void draw_panel(const Panel *p, int scale, int x0, Image *out) {
    float maxabs = p->kind == PANEL_ATTRIBUTION ? panel_maxabs(p) : 0;
    for (int y = 0; y < p->height; y++)
        for (int x = 0; x < p->width; x++) {
            uint8_t rgb[3];
            panel_rgb(p, (size_t)y * (size_t)p->width + (size_t)x, maxabs, rgb);
            for (int dy = 0; dy < scale; dy++) {
                size_t row = (size_t)(y * scale + dy) * (size_t)out->width;
                uint8_t *px = out->pix + (row + (size_t)(x0 + x * scale)) * 3;
                for (int dx = 0; dx < scale; dx++, px += 3)
                    px[0] = rgb[0], px[1] = rgb[1], px[2] = rgb[2];
            }
        }
}

bool image_render_strip(const Panel *panels, int n, int scale, Image *out, char *err,
                        size_t errcap) {
    *out = (Image){0};
    if (!check_panels(panels, n, scale, err, errcap)) return false;
    int64_t pw = (int64_t)panels[0].width * scale;
    int64_t w = pw * n + (int64_t)IMAGE_STRIP_GAP * (n - 1), h = (int64_t)panels[0].height * scale;
    if (w > IMAGE_MAX_SIDE || h > IMAGE_MAX_SIDE)
        return rt_fail(err, errcap, "image strip: %lldx%lld pixels is larger than %d a side",
                       (long long)w, (long long)h, IMAGE_MAX_SIDE);
    if (!image_alloc(out, (int)w, (int)h, 3, 255, err, errcap)) return false;
    for (int i = 0; i < n; i++)
        draw_panel(&panels[i], scale, (int)(i * (pw + IMAGE_STRIP_GAP)), out);
    return true;
}

bool image_write_strip_png(const char *path, const Panel *panels, int n, int scale, char *err,
                           size_t errcap) {
    Image img;
    char why[256] = "";
    if (!image_render_strip(panels, n, scale, &img, why, sizeof why))
        return rt_fail(err, errcap, "cannot write %s: %s", path ? path : "(null)", why);
    bool ok = image_write_png(path, &img, err, errcap);
    image_free(&img);
    return ok;
}
