"""Private files and directories: the state dir is 0700, the database and key files 0600.

Only what hookstream creates is made private (a ``HOOKSTREAM_STATE_DIR=/tmp`` must not turn
``/tmp`` into 0700); a database file it owns that an older version left world-readable is
tightened.
"""

from __future__ import annotations

import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create ``path`` and any missing parents with mode 0700 (``mkdir -p`` would use the umask's)."""
    path = Path(path)
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(d, DIR_MODE)  # mkdir's mode is filtered by the umask
    return path


def private_file(path: Path) -> Path:
    """Make sure ``path`` exists with mode 0600 (created empty when missing, tightened when ours)."""
    path = Path(path)
    private_dir(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    except FileExistsError:
        st = path.stat()
        if st.st_mode & 0o077 and st.st_uid == os.geteuid():
            os.chmod(path, FILE_MODE)
    return path
