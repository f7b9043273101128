import os
import tempfile

# Generated kernels go to a per-session cache dir so tests never depend on (or pollute) the
# user's cache, yet the whole session shares one compilation per plant.
os.environ.setdefault("MOREAUCTL_CACHE", os.path.join(tempfile.gettempdir(), "moreauctl-test-cache"))
