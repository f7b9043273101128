"""Sphinx configuration: the API reference from the numpydoc docstrings, the markdown pages
(myst-parser), and a gallery of the demos (sphinx-gallery) run at small sizes.

``make docs`` builds it into ``docs/_build/html`` with warnings as errors. Sphinx with
numpydoc and autosummary is what scipy's and numpy's users read daily, and it renders the
docstrings this project already writes (numpydoc sections with shapes) without rewriting them.
"""
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)
# the gallery scripts share docs/gallery/_gallery.py (run a demo, show what it wrote)
sys.path.insert(0, os.path.join(ROOT, "docs", "gallery"))
sys.path.insert(0, os.path.join(ROOT, "docs", "_ext"))
import moreauctl_sphinx  # noqa: E402  (docs/_ext: the reference's own Sphinx glue)
os.environ.setdefault("MPLBACKEND", "Agg")

project = "moreauctl"
author = "the moreauctl developers"
copyright = "2026, the moreauctl developers"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "moreauctl_sphinx",       # docs/_ext: where each object is documented, methods table, --help
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.md5", "auto_examples/*.json",
                    "gallery/README.md"]
master_doc = "index"

# -- API reference -----------------------------------------------------------------------
autosummary_generate = True
# Each object is documented once, by the module that defines it (the module template passes
# :ignore-module-all:), or at its top-level name for moreauctl.__all__; docs/_ext says how.
autosummary_context = moreauctl_sphinx.template_context()
autodoc_typehints = "none"           # the numpydoc sections carry the types and shapes
autodoc_default_options = {"members": True, "inherited-members": False}
numpydoc_show_class_members = False  # autosummary lists them
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
# Broken cross-references in docstrings (":func:`moreauctl.nope`") fail the build; names of
# other projects (numpy, casadi, scipy...) have no inventory offline, so they are ignored.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(np|numpy|ca|casadi|scipy|matplotlib|dask|concurrent|numba|tqdm|torch|sklearn"
               r"|argparse)(\..*)?"),
    (r"py:.*", r"(ndarray|callable|optional|mapping|module|Executor|Path|path-like)"),
]

# -- gallery ------------------------------------------------------------------------------
# Each docs/gallery/plot_*.py is a thin script that runs a demo at small sizes; the build
# executes it, so the figures a reader sees come from today's code.
sphinx_gallery_conf = {
    "examples_dirs": "gallery",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"(__init__|_gallery)\.py",
    "download_all_examples": False,
    "remove_config_comments": True,
    "plot_gallery": os.environ.get("MOREAUCTL_DOCS_GALLERY", "True"),
}

html_theme = "alabaster"
html_static_path = []
templates_path = ["_templates"]
