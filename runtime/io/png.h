/* PNG output through libpng: 8-bit grayscale and RGB images, and the
 * attribution figure layout (paper Figure 3: a horizontal strip of panels,
 * e.g. original image, IG of the original, adversarial image, IG of the
 * adversarial image), upscaled by an integer factor with nearest-neighbour
 * sampling so that 28x28 maps stay readable.
 *
 * Files are written to PATH.tmp.<pid> and renamed over PATH, so PATH is never
 * seen half written; on any failure the temporary file is removed and err
 * names PATH. Functions return false on failure; err may be NULL. */
#ifndef IGRC_RUNTIME_PNG_H
#define IGRC_RUNTIME_PNG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An 8-bit image, rows top to bottom, channels 1 (gray) or 3 (RGB)
 * interleaved: pixel (x, y) channel c is pix[(y * width + x) * channels + c]. */
typedef struct {
    int width, height, channels;
    uint8_t *pix; /* owned: image_free releases it */
} Image;

/* Largest width or height accepted, in pixels. */
#define IMAGE_MAX_SIDE 16384
/* Output pixels of white between two panels of a strip. */
#define IMAGE_STRIP_GAP 4

/* Allocates width x height x channels bytes, every byte set to fill. */
bool image_alloc(Image *img, int width, int height, int channels, uint8_t fill, char *err,
                 size_t errcap);
void image_free(Image *img);

bool image_write_png(const char *path, const Image *img, char *err, size_t errcap);

/* Diverging colormap of v / maxabs (clamped to [-1, 1]): white at 0, pure red
 * (255, 0, 0) at +1, pure blue (0, 0, 255) at -1, linear in between. maxabs 0
 * (an all-zero map) gives white. */
void image_diverging_rgb(float v, float maxabs, uint8_t rgb[3]);

typedef enum {
    PANEL_IMAGE,       /* an input image, values in [0, 1] (clamped) */
    PANEL_ATTRIBUTION, /* a signed map: channels summed per pixel, then the
                          diverging colormap normalised by the panel's max |v| */
} PanelKind;

/* One panel: channels x height x width floats, planar (one batch row of an
 * NCHW tensor); channels 1 or 3. A 1-channel PANEL_IMAGE is drawn gray. */
typedef struct {
    PanelKind kind;
    const float *data;
    int channels, height, width;
} Panel;

/* Renders n panels of equal height and width left to right, each scaled by
 * `scale` (1..64), IMAGE_STRIP_GAP white pixels between them, into a new RGB
 * image (free it with image_free). Fails on a NaN or infinite value. */
bool image_render_strip(const Panel *panels, int n, int scale, Image *out, char *err,
                        size_t errcap);

/* image_render_strip, then image_write_png. */
bool image_write_strip_png(const char *path, const Panel *panels, int n, int scale, char *err,
                           size_t errcap);

#endif
