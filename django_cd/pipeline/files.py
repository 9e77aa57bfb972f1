"""Who may read what django-cd writes, and what to say when writing fails.

Everything under a deploy root is private to the deploying user: directories
0700 and files 0600. When the environment names a ``group`` (for a web server
that serves ``static/`` from the release, say): directories 2750 (setgid, so
what is created inside inherits the group) and files 0640, owned by that
group. Backups (full copies of the database) and ``shared/.env`` (the
secrets) stay 0600 whatever the group; logs are 0640. Modes are set with
``chmod`` after creation, so the process umask never widens them.
"""

from __future__ import annotations

import errno
import grp
from dataclasses import dataclass
from functools import cached_property

from django_cd.pipeline.errors import describe_os_error

BACKUP_MODE = 0o600
SECRETS_MODE = 0o600
LOG_MODE = 0o640


@dataclass(frozen=True)
class Privacy:
    """The modes (and group) of what the engine writes for one environment."""

    group: str | None = None

    @property
    def dir_mode(self) -> int:
        # setgid: what the app server, pip or collectstatic create inside gets the
        # group too, not the deploying user's primary group.
        return 0o2750 if self.group else 0o700

    @property
    def file_mode(self) -> int:
        return 0o640 if self.group else 0o600

    @cached_property
    def gid(self) -> int:
        """The group's id; -1 (leave the group alone) when none is configured."""
        if not self.group:
            return -1
        try:
            return grp.getgrnam(self.group).gr_gid
        except KeyError:
            raise OSError(
                errno.EINVAL,
                f"the group {self.group!r} does not exist on this host: create it "
                "(groupadd) or change the environment's 'group'",
            ) from None


__all__ = ["BACKUP_MODE", "LOG_MODE", "SECRETS_MODE", "Privacy", "describe_os_error"]
