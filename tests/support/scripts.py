"""Load a runtime script from scripts/ (not a package) as a module, by path, once.

The tests use the same code the demo and developers run (scripts/devbroker.py,
scripts/demo_sound.py) instead of keeping copies of it.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def load_script(name: str) -> ModuleType:
    """scripts/<name>.py as module `name`; the module already loaded if there is one."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs: dataclasses and pickling look their module up by name.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
