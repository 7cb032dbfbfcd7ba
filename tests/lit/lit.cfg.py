# lit configuration for igrc's pass tests: IR in, `igrc dump --passes PASS`
# (or `igrc compile --emit kernels`) out, checked by FileCheck, LLVM's way.
# ctest runs it as test_lit with IGRC_BIN (the igrc under test) and
# IGRC_FILECHECK set; by hand:
#   IGRC_BIN=build/tools/igrc/igrc python3 /usr/lib/llvm-16/build/utils/lit/lit.py -sv tests/lit
import os
import sys

import lit.formats

config.name = "igrc"
config.test_format = lit.formats.ShTest(execute_external=True)
config.suffixes = [".ir", ".json"]
config.test_source_root = os.path.dirname(__file__)
config.excludes = ["lit.cfg.py"]
# lit's scratch files (Output/) go to the build tree, not the sources
config.test_exec_root = os.environ.get("IGRC_LIT_OUT", os.path.join("/tmp", "igrc-lit"))

igrc = os.environ.get("IGRC_BIN")
if not igrc:
    lit_config.fatal("set IGRC_BIN to the igrc binary under test")
filecheck = os.environ.get("IGRC_FILECHECK", "/usr/lib/llvm-16/bin/FileCheck")
config.substitutions.append(("%igrc", igrc))
config.substitutions.append(("FileCheck", filecheck))
# `not` (LLVM's: inverts an exit status, for tests of error messages) sits
# next to FileCheck in LLVM's tool directory; put that directory on PATH.
config.environment["PATH"] = os.pathsep.join(
    (os.path.dirname(filecheck), config.environment.get("PATH", os.environ.get("PATH", ""))))
# %python generates inputs too big to write by hand (the fusion group cap)
config.substitutions.append(("%python", sys.executable))
config.substitutions.append(("%models", os.path.join(os.path.dirname(os.path.dirname(
    config.test_source_root)), "models")))
# the sanitizer build reports leaks through the environment it is given
for var in ("LSAN_OPTIONS", "ASAN_OPTIONS", "UBSAN_OPTIONS"):
    if var in os.environ:
        config.environment[var] = os.environ[var]
