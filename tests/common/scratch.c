#include "tests/common/scratch.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

char g_dir[64];

static void remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
            remove_tree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

void scratch_setup(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/igrc_test_XXXXXX");
    cr_assert(mkdtemp(g_dir), "mkdtemp");
}

void scratch_teardown(void) { remove_tree(g_dir); }

const char *in_dir(const char *name) {
    static char buf[8][512];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 512, "%s/%s", g_dir, name);
    return p;
}

const char *shared_artifact(const char *key, void (*make)(const char *dir, const void *arg), const void *arg) {
    static char buf[4][512];
    static int k;
    char *dir = buf[k++ % 4], lock[600], done[600];
    const char *root = getenv("IGRC_TEST_SHARED");
    if (!root || !*root) root = g_dir;
    cr_assert(mkdir(root, 0777) == 0 || errno == EEXIST, "cannot create %s", root);
    snprintf(dir, 512, "%s/%s", root, key);
    snprintf(lock, sizeof lock, "%s.lock", dir);
    snprintf(done, sizeof done, "%s/.done", dir);
    int fd = open(lock, O_CREAT | O_RDWR | O_CLOEXEC, 0644);
    cr_assert(fd >= 0 && flock(fd, LOCK_EX) == 0, "cannot lock %s", lock);
    if (access(done, F_OK) != 0) {
        remove_tree(dir);
        cr_assert(mkdir(dir, 0777) == 0, "cannot create %s", dir);
        make(dir, arg);
        int d = open(done, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        cr_assert(d >= 0, "cannot create %s", done);
        close(d);
    }
    close(fd); /* releases the lock */
    return dir;
}
