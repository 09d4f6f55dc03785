"""The ``litefs-guard`` console script of the wheel: execs the command line
tool (a Rust binary) shipped in the package as ``litefs_guard/bin/litefs-guard``.

Its exit status and output are the tool's own (``litefs-guard status``: 0
primary, 1 replica, 2 LiteFS not running, ...). When the package has no
binary (installed from a source tree), it exits 69 (sysexits
EX_UNAVAILABLE) and says so.
"""

import os
import sys
from typing import List, Optional

#: The command's name, and the binary's inside the package (``bin/``).
CLI_NAME = "litefs-guard"
#: Exit status when the binary is missing (sysexits EX_UNAVAILABLE).
EXIT_NO_CLI = 69


def bundled_path() -> str:
    """Where the wheel puts the tool: ``<package>/bin/litefs-guard`` (it may
    not exist: see :func:`bundled`)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin", CLI_NAME)


def bundled() -> Optional[str]:
    """The tool shipped in this package, when present and executable."""
    path = bundled_path()
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = bundled()
    if path is None:
        sys.stderr.write(
            f"{CLI_NAME}: the command line tool is not in this installation of the "
            f"litefs-guard package ({bundled_path()} is missing or not executable): "
            "install the platform wheel, or build it (cargo build --release -p litefs-guard-cli)\n"
        )
        return EXIT_NO_CLI
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(path, [CLI_NAME, *args])
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
