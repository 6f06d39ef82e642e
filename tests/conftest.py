"""The test tree's root: pytest puts this folder on sys.path, so test files share helper
modules kept here (nettrim_checks) across their folders. The cache of lowered models
(amchw.cache) goes to a folder of the test process, removed at its end, never the user's
~/.cache."""

import atexit
import os
import shutil
import tempfile

os.environ["AMCHW_CACHE_DIR"] = _CACHE = tempfile.mkdtemp(prefix="amchw-test-cache-")
atexit.register(shutil.rmtree, _CACHE, True)
