"""``manage.py litefs_config``: litefs.yml from ``settings.LITEFS``.

    manage.py litefs_config              print the file (stdout)
    manage.py litefs_config -o FILE      write it
    manage.py litefs_config --check      validate only

Checking and rendering are the ``litefs-guard`` tool's (``config render
--from-json``/``config init --from-json``), found as
:func:`litefs_guard.django.litefs_yml.find_cli` says. Each problem names its
settings key (``LITEFS["LEASE"]["TYPE"]: ...``).

Exit status: 0 good, 1 problems in the settings, 69 the tool was not found,
78 ``settings.LITEFS`` missing or not a dict.
"""

import os
import sys

from django.conf import settings
from django.core.management.base import BaseCommand

from ...litefs_yml import EXIT_CONFIG, LiteFSSettingsError, check, render


class Command(BaseCommand):
    help = (
        "Generate litefs.yml from settings.LITEFS (or validate it with --check). "
        "Exit 0 good, 1 problems, 69 litefs-guard not found, 78 no settings.LITEFS."
    )

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true", help="Validate settings.LITEFS as LiteFS would; print nothing else.")
        parser.add_argument("-o", "--output", metavar="FILE", help="Write the file here instead of stdout.")

    def handle(self, *args, **options):
        if not hasattr(settings, "LITEFS"):
            self._fail(["settings.LITEFS is not set: see `manage.py litefs_config --help`"], EXIT_CONFIG)
        cli = getattr(settings, "LITEFS_GUARD_CLI", None)
        try:
            if options["check"]:
                problems = check(settings.LITEFS, cli)
                if problems:
                    self._fail(problems, 1)
                self.stdout.write("settings.LITEFS: ok")
                return
            text = render(settings.LITEFS, cli)
        except LiteFSSettingsError as exc:
            self._fail(exc.problems, exc.exit_code)
        if options["output"]:
            tmp = options["output"] + ".tmp"
            with open(tmp, "w") as f:
                f.write(text)
            os.replace(tmp, options["output"])
        else:
            self.stdout.write(text, ending="")

    def _fail(self, problems, code):
        for p in problems:
            self.stderr.write(p)
        self.stderr.flush()
        # CommandError prints one line and exits 1; the codes say more.
        sys.exit(code)
