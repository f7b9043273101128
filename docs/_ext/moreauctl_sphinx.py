"""Sphinx glue for the moreauctl API reference (loaded by ``docs/conf.py``).

Each piece is about *where* an object is described, or generates text from the code; none
hides a warning:

- **Each object described once.** A name of ``moreauctl.__all__`` (``mc.solve``, ``mc.Chain``...) is
  documented once, at that public name (its own page, listed in ``api.rst``); the page of
  the module that defines it skips it (``autodoc-skip-member``), so nothing is described
  twice. Every other object is documented on the page of the module that defines it, next
  to the module docstring that carries its equations (``:ignore-module-all:`` in
  ``_templates/autosummary/module.rst``). A package's page lists its ``__all__``, each row
  linking to where the object is described (:func:`template_context`). Modules hidden by a
  name of their package (``moreauctl.solve`` is also the function) get a page of their own
  (:func:`write_shadowed_pages`).
- **Re-exported names resolve.** ``moreauctl.studies.horizon_sweep`` is the name users write;
  the function is documented as ``moreauctl.studies.sweep.horizon_sweep``. When the Python
  domain finds no object under a reference's name, ``missing-reference`` imports that name
  and links to the documented name bound to *the same object* (identity, not a name guess).
  A reference to something that does not import, or to an object documented nowhere,
  still fails the build.
- **Generated at build time from the code** (so they cannot drift): the table of registered
  methods (``.. moreauctl-methods::``, from :data:`moreauctl.METHODS`) and the ``--help``
  text of each sub-command (``.. moreauctl-help:: swingup``, from
  :func:`moreauctl.cli.build_parser`).
- autosummary's one-line summaries do not stop at the papers' abbreviations (``Sec. 4``).
"""
from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import os
import pkgutil
import re
import sys
from pathlib import Path

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

_MISSING = object()


# -- one page per object ------------------------------------------------------------------
def _top_level_exports():
    import moreauctl as mc
    return {name: getattr(mc, name) for name in mc.__all__ if not name == "models"}


def skip_top_level_exports(app, what, name, obj, skip, options):
    """Skip, in the description of a module's members, one that ``moreauctl`` exports under
    the same name: it has its own page at ``moreauctl.<name>``. autosummary's tables (which
    call this with the member's own type as ``what``) keep it, linking to that page."""
    if what != "module":
        return None
    top = _top_level_exports()
    if name in top and top[name] is obj:
        return True
    return None


def _public_modules():
    """Every public module of the installed package (no ``_private`` part), by name."""
    import moreauctl as mc
    names = ["moreauctl", "moreauctl.models"]
    # models/ is mapped in from the repository's top (package-dir), outside mc.__path__
    for package in (mc, mc.models):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not _is_private(info.name):
                names.append(info.name)
    for name in names:
        importlib.import_module(name)
    return sorted(names)


def shadowed_modules():
    """Modules hidden by a name their package binds (``moreauctl.solve`` is the function
    ``solve``; ``moreauctl.codegen.translate`` the function ``translate``). autosummary
    imports names the way Python does, so it cannot give them a page; they get one from
    :func:`write_shadowed_pages`. ``moreauctl.models`` documents its factories at the public
    names instead (``models.pendulum_swingup``), the model files being copyable scripts."""
    out = []
    for name in _public_modules():
        parent, _, last = name.rpartition(".")
        if parent and not parent.startswith("moreauctl.models"):
            if getattr(sys.modules[parent], last, None) is not sys.modules[name]:
                out.append(name)
    return out


def shadowed_page(name):
    """Docname (under ``docs/``) of a shadowed module's page."""
    return f"generated/{name}.module"


def write_shadowed_pages(app):
    """Write the page of each shadowed module. When the shadowing object is a top-level name
    (``mc.solve``: documented at ``moreauctl.solve``), the module is not indexed, as the two
    would share one name; otherwise the module is indexed and its functions keep their full
    names (``moreauctl.codegen.translate.translate``)."""
    out_dir = Path(app.srcdir) / "generated"
    out_dir.mkdir(exist_ok=True)
    for name in shadowed_modules():
        top_level = name.count(".") == 1
        title = f"{name} (module)"
        lines = [title, "=" * len(title), "", f".. automodule:: {name}", "   :members:",
                 "   :ignore-module-all:"]
        if top_level:
            lines.append("   :no-index:")
        path = Path(app.srcdir) / (shadowed_page(name) + ".rst")
        text = "\n".join(lines) + "\n"
        if not path.exists() or path.read_text() != text:   # keep mtimes: no needless re-read
            path.write_text(text)


def _is_private(modname: str) -> bool:
    return any(part.startswith("_") for part in modname.split("."))


def _attr_docs(modname: str) -> set:
    """Names of the module's data with a ``#:`` doc comment (what autodoc documents)."""
    from sphinx.pycode import ModuleAnalyzer
    try:
        return {name for (scope, name) in ModuleAnalyzer.for_module(modname).find_attr_docs()
                if scope == ""}
    except Exception:
        return set()


def documented_name(package: str, attr: str):
    """Where ``package.attr`` is described: ``moreauctl.<attr>`` for a top-level name, the
    defining module's full name for a function or class, the sub-module whose ``#:`` comment
    documents a data object; None when the package's own page must describe it (defined in a
    private module) or nothing does (the build then reports the table entry)."""
    obj = getattr(sys.modules[package], attr)
    top = _top_level_exports()
    if attr in top and top[attr] is obj:
        return f"moreauctl.{attr}"
    if inspect.isfunction(obj) or inspect.isclass(obj):
        if _is_private(obj.__module__):
            return None
        return f"{obj.__module__}.{obj.__qualname__}"
    if inspect.ismodule(obj):
        return obj.__name__
    # the package's sub-modules first, then any module (``oracles.RULES`` is ``rules.RULES``)
    candidates = sorted(_public_modules(), key=lambda m: not m.startswith(package + "."))
    for modname in candidates:
        if attr in _attr_docs(modname) and getattr(sys.modules[modname], attr, _MISSING) is obj:
            return f"{modname}.{attr}"
    return None


def template_context():
    """``autosummary_context`` for ``_templates/autosummary/module.rst``:

    - ``exports[package]``: the package's ``__all__`` as table entries: ``~full.name`` of
      where each object is described (:func:`documented_name`), so the row links there and
      shows that description's first line;
    - ``public_all[package]``: its ``__all__`` as is, for a package whose objects are
      described at the names it exports (``moreauctl.models``);
    - ``private_exports[package]``: ``(directive, name)`` of the exports defined in a private
      module (``moreauctl.studies.write_json_atomic`` is ``moreauctl._io``'s), described on
      the package's page since no page describes their module;
    - ``shadowed[package]``: sub-modules the page must not recurse into (autosummary would
      document the shadowing object under the module's name); the page links to their
      pages from :func:`write_shadowed_pages` instead.
    """
    exports, public_all, private_exports, shadowed = {}, {}, {}, {}
    for name in _public_modules():
        module = sys.modules[name]
        if name == "moreauctl" or not hasattr(module, "__path__") \
                or not hasattr(module, "__all__"):
            continue
        exports[name], public_all[name] = [], list(module.__all__)
        for attr in module.__all__:
            where = documented_name(name, attr)
            if where and where.startswith(name + "."):   # autosummary wants it relative
                where = where[len(name) + 1:]
            exports[name].append(f"~{where}" if where else attr)
            obj = getattr(module, attr)
            if where is None and (inspect.isfunction(obj) or inspect.isclass(obj)):
                directive = "autoclass" if inspect.isclass(obj) else "autofunction"
                private_exports.setdefault(name, []).append((directive, attr))
    for name in shadowed_modules():
        parent, _, last = name.rpartition(".")
        shadowed.setdefault(parent, []).append(last)
    return {"exports": exports, "public_all": public_all, "private_exports": private_exports,
            "shadowed": shadowed}


# -- re-exported names resolve to where the object is documented ---------------------------
def _import_dotted(name, modules_first=False):
    """The object ``name`` denotes, or ``_MISSING``. As Python reads ``a.b.c`` (attribute
    access first, importing a submodule only when the attribute is missing), or with
    ``modules_first`` as autodoc reads a documented name (the longest importable module
    prefix, then attributes): ``moreauctl.codegen.translate`` is a function to Python and a
    module to autodoc."""
    parts = name.split(".")
    if modules_first:
        for i in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:i]))
            except Exception:
                continue
            for attr in parts[i:]:
                obj = getattr(obj, attr, _MISSING)
                if obj is _MISSING:
                    return _MISSING
            return obj
        return _MISSING
    try:
        obj = importlib.import_module(parts[0])
    except Exception:
        return _MISSING
    for i, attr in enumerate(parts[1:], start=2):
        value = getattr(obj, attr, _MISSING)
        if value is _MISSING and inspect.ismodule(obj):
            try:
                value = importlib.import_module(".".join(parts[:i]))
            except Exception:
                return _MISSING
        if value is _MISSING:
            return _MISSING
        obj = value
    return obj


def resolve_alias(app, env, node, contnode):
    """Link a reference to a full name (``moreauctl.studies.horizon_sweep``) that the Python
    domain does not know to the documented name of the same object. Short names
    (``horizon_sweep``) are left to the Python domain's own rules: qualify them."""
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].removesuffix("()")
    if not target.startswith("moreauctl."):
        return None
    obj = _import_dotted(target)
    if obj is _MISSING:
        return None
    domain = env.domains["py"]
    last = target.rsplit(".", 1)[-1]
    same = sorted((name for name, entry in domain.objects.items()
                   if name.rsplit(".", 1)[-1] == last and name != target
                   and not entry.aliased and _import_dotted(name, modules_first=True) is obj),
                  key=lambda n: (len(n), n))
    if not same:
        return None
    return domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], same[0],
                               _without_context(node), contnode)


def _without_context(node):
    node = node.deepcopy()
    for key in ("py:module", "py:class", "refspecific"):
        if key in node.attributes:
            del node.attributes[key]
    return node


# -- the registered methods ----------------------------------------------------------------
def _escape(text: str) -> str:
    """Plain text (a method's doc line) as reStructuredText that renders it verbatim."""
    return re.sub(r"([\\`*|_\[\]<>])", r"\\\1", text)


class MethodsTable(SphinxDirective):
    """``.. moreauctl-methods::``: a table of :data:`moreauctl.METHODS` (name, what runs it,
    its doc line), from the registry of the installed code."""

    has_content = False

    def run(self):
        import moreauctl as mc
        from moreauctl import registry
        self.env.note_dependency(registry.__file__)
        rows = []
        for name, m in sorted(mc.METHODS.items(), key=lambda kv: (not kv[1].is_solver, kv[0])):
            if m.is_solver:
                runs = f"solver, :mod:`{m.run.__module__}`"
            else:
                runs = f"oracle ``{m.oracle}`` + optimizer ``{m.optimizer}``"
                if m.step_option:
                    runs += f"; ``step`` sets ``{m.step_option}``"
            rows.append((f"``{name}``", runs, _escape(m.doc) or "\\ "))
        lines = [".. list-table:: Methods of :func:`moreauctl.solve`",
                 "   :header-rows: 1", "   :widths: 20 35 45", "",
                 "   * - ``method``", "     - runs", "     - description"]
        for row in rows:
            lines += [f"   * - {row[0]}", f"     - {row[1]}", f"     - {row[2]}"]
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source="<moreauctl-methods>"),
                                self.content_offset, container)
        return container.children


# -- the command line's --help ----------------------------------------------------------------
class CommandHelp(SphinxDirective):
    """``.. moreauctl-help:: [SUBCOMMAND]``: the ``--help`` text argparse prints, captured
    from :func:`moreauctl.cli.main` at build time (88 columns)."""

    optional_arguments = 1

    def run(self):
        from moreauctl import cli
        argv = ([self.arguments[0]] if self.arguments else []) + ["--help"]
        for module in (cli, *cli.SUBCOMMANDS):
            self.env.note_dependency(module.__file__)
        out = io.StringIO()
        old = os.environ.get("COLUMNS")
        os.environ["COLUMNS"] = "88"      # argparse wraps to the terminal; pin the width
        try:
            with contextlib.redirect_stdout(out):
                cli.main(argv)
        except SystemExit as e:           # --help exits 0 after printing
            if e.code not in (0, None):
                raise self.error(f"moreauctl {' '.join(argv)} exited with {e.code}")
        finally:
            if old is None:
                del os.environ["COLUMNS"]
            else:
                os.environ["COLUMNS"] = old
        text = out.getvalue().rstrip()
        if not text:
            raise self.error(f"moreauctl {' '.join(argv)} printed nothing")
        block = nodes.literal_block(text, text, language="text")
        return [block]


def _cite_abbreviations():
    """autosummary's table shows a docstring's first sentence, cut at a period followed by a
    space unless it ends a well-known abbreviation. The docstrings cite the papers as
    ``Sec. 4``, ``Def. 1.1``, ``Algo 2``, ``Fig. 3``, ``Prop. 2.2``...; without these the
    summaries end at "(Sec.". Only summaries change (no warning is affected)."""
    from sphinx.ext import autosummary
    extra = ("Sec.", "Def.", "Fig.", "Eq.", "Eqs.", "Alg.", "Prop.", "Thm.", "s.t.", "resp.")
    known = getattr(autosummary, "WELL_KNOWN_ABBREVIATIONS", None)
    if isinstance(known, tuple):
        autosummary.WELL_KNOWN_ABBREVIATIONS = known + tuple(a for a in extra if a not in known)


def setup(app):
    _cite_abbreviations()
    app.connect("builder-inited", write_shadowed_pages)
    app.connect("autodoc-skip-member", skip_top_level_exports)
    app.connect("missing-reference", resolve_alias)
    app.add_directive("moreauctl-methods", MethodsTable)
    app.add_directive("moreauctl-help", CommandHelp)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
