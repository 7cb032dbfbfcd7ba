/* A scratch directory per test: created by scratch_setup (a Criterion
 * .init), removed with everything in it by scratch_teardown (.fini). */
#ifndef IGRC_TEST_SCRATCH_H
#define IGRC_TEST_SCRATCH_H

extern char g_dir[64];

void scratch_setup(void);
void scratch_teardown(void);
/* Path of name in the scratch directory; the last 8 results stay valid. */
const char *in_dir(const char *name);

#endif
