"""Release bundles for agent.update tests: a tar of the wheels in a folder, as
scripts/build-bundle.sh --tar makes it; NEXT is the version the renumbered bundle holds."""

from __future__ import annotations

import tarfile
from pathlib import Path

NEXT = "0.99.0"


def tar_of_wheels(folder: Path, dest: Path) -> Path:
    with tarfile.open(dest, "w") as tar:
        for whl in sorted(folder.glob("*.whl")):
            tar.add(whl, arcname=whl.name)
    return dest
