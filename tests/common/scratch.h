/* A scratch directory per test: created by scratch_setup (a Criterion
 * .init), removed with everything in it by scratch_teardown (.fini). */
#ifndef IGRC_TEST_SCRATCH_H
#define IGRC_TEST_SCRATCH_H

extern char g_dir[64];

void scratch_setup(void);
void scratch_teardown(void);
/* Path of name in the scratch directory; the last 8 results stay valid. */
const char *in_dir(const char *name);

/* The directory of an artifact made once and reused (a compiled model, a
 * trained checkpoint): by every test of a ctest run when IGRC_TEST_SHARED
 * names a directory (tests/CMakeLists.txt empties it before the run), else
 * by the calling test alone, in its scratch directory. make(dir, arg) builds
 * it into the empty directory dir; a caller waits on a lock while another
 * process makes the same key, then reuses it. A make that fails (an
 * assertion ends the test's process) leaves the key to the next caller.
 * key names everything that makes the artifact what it is. The last 4
 * results stay valid. */
const char *shared_artifact(const char *key, void (*make)(const char *dir, const void *arg), const void *arg);

#endif
