"""litefs.yml from Django settings: the ``LITEFS`` dict, turned into the
file's structure and handed to the ``litefs-guard`` command line tool,
which checks and renders it with the same code as ``litefs-guard config``.

Layout of ``settings.LITEFS``: one upper-case key per litefs.yml section,
nested as in the file, hyphens written as underscores::

    LITEFS = {
        "FUSE": {"DIR": "/litefs"},
        "DATA": {"DIR": "/var/lib/litefs"},
        "LEASE": {"TYPE": "static", "CANDIDATE": True, "ADVERTISE_URL": "http://node-a:20202"},
        "PROXY": {"ADDR": ":8080", "TARGET": "localhost:8000", "DB": "db.sqlite3"},
        "EXEC": "gunicorn app.wsgi",
    }

The earlier package's flat keys are accepted too (see ``FLAT``);
``LEADER_ELECTION`` maps to ``lease.type`` for ``static``/``consul`` and is
refused otherwise (LiteFS has no raft election).

The tool is found, in order, at the Django setting ``LITEFS_GUARD_CLI``, the
environment variable ``LITEFS_GUARD_CLI``, the one the wheel ships in the
package (``litefs_guard/bin/litefs-guard``), then ``litefs-guard`` on
``PATH``.
"""

import json
import os
import shutil
import subprocess
from typing import Any, Dict, List, Optional, Tuple

from litefs_guard import _cli

#: Flat keys of the earlier package: settings key -> litefs.yml key path.
FLAT = {
    "MOUNT_PATH": ("fuse", "dir"),
    "DATA_PATH": ("data", "dir"),
    "PROXY_ADDR": ("proxy", "addr"),
    "DATABASE_NAME": ("proxy", "db"),
    "RETENTION": ("data", "retention"),
}

#: Values of the earlier ``LEADER_ELECTION`` key that LiteFS has.
LEADER_ELECTION = {"static": "static", "consul": "consul"}

CLI_NAME = "litefs-guard"
#: Exit status of `manage.py litefs_config` when the tool cannot be found
#: (sysexits EX_UNAVAILABLE); 1 is for problems in the settings.
EXIT_NO_CLI = 69
#: When settings.LITEFS is missing or not a dict (sysexits EX_CONFIG).
EXIT_CONFIG = 78


class LiteFSSettingsError(Exception):
    """``settings.LITEFS`` cannot become a litefs.yml; ``problems`` lists
    each as ``LITEFS[...]...: reason``."""

    def __init__(self, problems: List[str], exit_code: int = 1):
        super().__init__("\n".join(problems))
        self.problems = problems
        self.exit_code = exit_code


def setting_path(parts: List[Any]) -> str:
    """``LITEFS["LEASE"]["TYPE"]`` for ``["LEASE", "TYPE"]``."""
    return "LITEFS" + "".join(f"[{p!r}]" if isinstance(p, int) else f'["{p}"]' for p in parts)


def _file_key(k: Any, where: List[Any]) -> str:
    if not isinstance(k, str):
        raise LiteFSSettingsError([f"{setting_path(where + [k])}: keys must be strings"])
    return k.lower().replace("_", "-")


def _convert(value: Any, where: List[Any], origins: Dict[str, str], dotted: str) -> Any:
    """The file's structure for ``value``; ``origins`` maps each dotted file
    key to the settings path it came from."""
    origins[dotted] = setting_path(where)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            fk = _file_key(k, where)
            out[fk] = _convert(v, where + [k], origins, f"{dotted}.{fk}" if dotted else fk)
        return out
    if isinstance(value, (list, tuple)):
        return [_convert(v, where + [i], origins, f"{dotted}[{i}]") for i, v in enumerate(value)]
    return value


def structure(litefs: Any) -> Tuple[Dict[str, Any], Dict[str, str]]:
    """litefs.yml's structure from ``settings.LITEFS``, and where each file
    key came from (dotted file key -> ``LITEFS[...]``)."""
    if not isinstance(litefs, dict):
        raise LiteFSSettingsError(
            [f"settings.LITEFS must be a dict like {{'FUSE': {{'DIR': '/litefs'}}}}, got {type(litefs).__name__}"],
            EXIT_CONFIG,
        )
    origins: Dict[str, str] = {}
    out: Dict[str, Any] = {}
    problems: List[str] = []
    flat = []
    for key, value in litefs.items():
        if key in FLAT:
            flat.append((key, value))
        elif key == "LEADER_ELECTION":
            kind = LEADER_ELECTION.get(str(value).lower()) if isinstance(value, str) else None
            if kind is None:
                problems.append(
                    f"{setting_path([key])} = {value!r}: LiteFS has no such leader election "
                    "(it has no raft); set LITEFS[\"LEASE\"][\"TYPE\"] to \"static\" (one fixed "
                    "primary) or \"consul\" (Consul elects it)"
                )
            else:
                flat.append((key, kind))
        else:
            fk = _file_key(key, [])
            out[fk] = _convert(value, [key], origins, fk)
    for key, value in flat:
        section, name = FLAT.get(key, ("lease", "type"))
        target = out.setdefault(section, {})
        if not isinstance(target, dict):
            problems.append(f"{origins.get(section, setting_path([section.upper()]))} must be a dict")
            continue
        dotted = f"{section}.{name}"
        if name in target:
            problems.append(
                f"{setting_path([key])} and {origins[dotted]} both set litefs.yml's {dotted}: keep one"
            )
            continue
        target[name] = value
        origins[dotted] = setting_path([key])
    if problems:
        raise LiteFSSettingsError(problems)
    return out, origins


def find_cli(setting: Optional[str] = None) -> str:
    """The ``litefs-guard`` tool's path (see the module's docstring)."""
    tried = []
    for where, path in (
        ("settings.LITEFS_GUARD_CLI", setting),
        ("$LITEFS_GUARD_CLI", os.environ.get("LITEFS_GUARD_CLI") or None),
    ):
        if path is not None:
            if os.path.isfile(path) and os.access(path, os.X_OK):
                return path
            raise LiteFSSettingsError([f"{where} = {path!r} is not an executable file"], EXIT_NO_CLI)
    bundled = _cli.bundled()
    if bundled:
        return bundled
    tried.append(_cli.bundled_path())
    on_path = shutil.which(CLI_NAME)
    if on_path:
        return on_path
    tried.append(f"{CLI_NAME} on PATH")
    raise LiteFSSettingsError(
        [
            f"the {CLI_NAME} command line tool was not found (tried {', '.join(tried)}); "
            "install the platform wheel (it ships the tool), or put it on PATH (`make install` "
            "puts it in BINDIR), or set LITEFS_GUARD_CLI (Django setting or environment variable) "
            "to its path"
        ],
        EXIT_NO_CLI,
    )


def _run(cli: str, args: List[str], data: Dict[str, Any]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [cli, *args], input=json.dumps(data), capture_output=True, text=True, timeout=60
    )


def _named(problem: Dict[str, Any], origins: Dict[str, str]) -> str:
    """One problem of the tool's, named by the settings key it came from."""
    report = problem.get("report") or ""
    key = problem.get("key")
    # Drop `<stdin>[:LINE:COL]: `: positions in a JSON rendering mean nothing here.
    head, sep, rest = report.partition(": ")
    if sep and head.startswith("<stdin>"):
        report = rest
    if not key:
        return f"LITEFS: {report}"
    # The longest dotted prefix the settings wrote; a missing key has none.
    name = None
    probe = key
    while probe:
        if probe in origins:
            name = origins[probe] + _suffix(key[len(probe):])
            break
        cut = max(probe.rfind("."), probe.rfind("["))
        if cut <= 0:
            break
        probe = probe[:cut]
    if name is None:
        name = setting_path([p for p in _parts(key)])
    if report.startswith(key):
        return name + report[len(key):]
    return f"{name}: {report}"


def _parts(dotted: str) -> List[Any]:
    out: List[Any] = []
    for part in dotted.replace("[", ".[").split("."):
        if not part:
            continue
        if part.startswith("[") and part.endswith("]") and part[1:-1].isdigit():
            out.append(int(part[1:-1]))
        else:
            out.append(part.upper().replace("-", "_"))
    return out


def _suffix(rest: str) -> str:
    return "".join(f"[{p!r}]" if isinstance(p, int) else f'["{p}"]' for p in _parts(rest))


def check(litefs: Any, cli: Optional[str] = None) -> List[str]:
    """Every problem LiteFS would have with the file ``litefs`` describes,
    plus keys LiteFS does not know (it ignores them silently), each named by
    its settings key. Empty when the file is good."""
    data, origins = structure(litefs)
    cli = find_cli(cli)
    r = _run(cli, ["config", "render", "--from-json", "--json", "-"], data)
    try:
        out = json.loads(r.stdout)
    except ValueError:
        raise LiteFSSettingsError([f"{cli} failed (exit {r.returncode}): {r.stderr.strip()}"], r.returncode or 1)
    problems = [_named(p, origins) for p in out.get("problems", [])]
    config = out.get("config") or {}
    for key in config.get("unknown_keys", []):
        name = origins.get(key) or setting_path(_parts(key))
        problems.append(f"{name}: not a LiteFS setting (LiteFS would ignore it); check the spelling")
    return problems


def render(litefs: Any, cli: Optional[str] = None) -> str:
    """The litefs.yml text for ``litefs``; LiteFSSettingsError when it has problems."""
    problems = check(litefs, cli)
    if problems:
        raise LiteFSSettingsError(problems)
    data, _ = structure(litefs)
    cli = find_cli(cli)
    r = _run(cli, ["config", "init", "--from-json", "-"], data)
    if r.returncode != 0:
        raise LiteFSSettingsError([f"{cli} config init failed (exit {r.returncode}): {r.stderr.strip()}"])
    return r.stdout
