"""rt-analyze: record and analyze realtime voice-AI traffic."""

from analyzer.compiled import compiled_package_dir as _compiled_package_dir

# The compiled report modules, when built from these sources, are found before the sources.
_compiled = _compiled_package_dir()
if _compiled is not None:
    __path__.insert(0, str(_compiled))
