#define _POSIX_C_SOURCE 200809L
#include "tests/fuzz/fuzz_util.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_dir[256];

static void remove_dir(void) {
    DIR *d = opendir(g_dir);
    if (d) {
        char p[512];
        for (struct dirent *e; (e = readdir(d));) {
            if (e->d_name[0] == '.') continue;
            snprintf(p, sizeof p, "%s/%s", g_dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(g_dir);
}

const char *fuzz_dir(void) {
    if (g_dir[0]) return g_dir;
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/igrc_fuzz_XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(g_dir)) abort();
    atexit(remove_dir);
    return g_dir;
}

const char *fuzz_file(int slot, const char *name, const uint8_t *p, size_t n) {
    static char paths[8][512];
    snprintf(paths[slot], sizeof paths[slot], "%s/%s", fuzz_dir(), name);
    FILE *f = fopen(paths[slot], "wb");
    if (!f || (n && fwrite(p, 1, n, f) != n)) abort();
    fclose(f);
    return paths[slot];
}

char *fuzz_text(const uint8_t *p, size_t n) {
    char *t = malloc(n + 1);
    if (!t) abort();
    memcpy(t, p, n);
    t[n] = 0;
    return t;
}
