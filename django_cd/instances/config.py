"""A template of testing instances: the ``instances`` dict of an environment.

::

    "testing": {
        "settings": "settings.staging",
        "root": "/srv/notes/testing",
        "manage": "sampleproject/manage.py",
        "server": {"type": "gunicorn", "wsgi": "notesboard.wsgi", "workers": 1},
        "instances": {
            "ports": [8700, 8799],
            "url": "https://{name}.testing.example.com/",
            "database": "notes_{name}",
            "database_from": "staging",
        },
    }

An instance ``pr-123`` of it is the derived environment ``testing.pr-123``:
the template's fields, with its own root, server address, URL and database.
Checks ``django_cd.E140``-``E149`` and ``W140``-``W149`` (docs/checks.md).
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django_cd import conf

#: Keys of ``instances`` and their defaults; ``None`` in REQUIRED marks the required ones.
DEFAULTS: dict[str, Any] = {
    # Where each instance's release layout lives; {name} is the instance name.
    "root": "{root}/{name}",
    # The app server's address: "127.0.0.1:{port}" (a port from "ports") or "unix:...{name}...".
    "bind": "127.0.0.1:{port}",
    # [first, last]: the ports instances may listen on, each instance its own.
    "ports": None,
    # The instance's public URL; {name} and {port} are filled in. Default: http://{bind}/.
    "url": None,
    # The instance database: a PostgreSQL/MySQL database name, or an SQLite file
    # (relative paths are under the instance's shared/).
    "database": None,
    # The environment whose database each instance starts from (a fresh copy).
    "database_from": None,
    # Copying a live-like environment's database (one with promote_from) must be said.
    "copy_from_live": False,
    # The variable of shared/.env that names the database (a database URL).
    "database_variable": "DATABASE_URL",
    "max_instances": 10,
    # A source database larger than this is not copied.
    "max_database_mb": 1024,
    # A manage.py command line run on each fresh copy before the instance serves.
    "scrub": None,
}
REQUIRED = ("database", "database_from")
SEPARATOR = "."
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
# Names of the template root's own entries: an instance root must never be one of them.
RESERVED_NAMES = frozenset({"instances", "venvs", "shared", "releases", "current"})
SERVER_TYPES = ("gunicorn", "uwsgi")


class InstanceError(Exception):
    """Bad input or a refused instance action; the message says what to do."""


@dataclass(frozen=True)
class Template:
    """An environment whose ``instances`` dict makes it a template of testing instances."""

    env: conf.Environment
    options: Mapping[str, Any]

    @classmethod
    def of(cls, env: conf.Environment) -> Template:
        """The template ``env`` is, or ``InstanceError`` saying why it is not one."""
        if env.instances is None:
            raise InstanceError(
                f"Environment {env.name!r} is not a template of testing instances: give it "
                "an 'instances' dict (docs/instances.md), or use --env with one that has it."
            )
        problems = [p for p in validate_template(env.name, env.instances) if not p.is_warning]
        if problems:
            lines = "\n".join(f"  {p.id}: {p.msg} Hint: {p.hint}" for p in problems)
            raise InstanceError(f"The instances of {env.name!r} are not valid:\n{lines}")
        return cls(env, {**DEFAULTS, **env.instances})

    @property
    def name(self) -> str:
        return self.env.name

    @property
    def registry(self) -> str:
        """Where the instances' records and locks live: ``<template root>/instances``."""
        return posixpath.join(self.env.root, "instances")

    @property
    def venv_pool(self) -> str:
        """Virtualenvs shared by the instances (each links those it uses)."""
        return posixpath.join(self.env.root, "venvs")

    @property
    def env_file(self) -> str:
        """The ``.env`` every instance's ``shared/.env`` is derived from."""
        return posixpath.join(self.env.root, "shared", ".env")

    @property
    def ports(self) -> range | None:
        ports = self.options["ports"]
        return range(ports[0], ports[1] + 1) if ports else None

    @property
    def uses_port(self) -> bool:
        return "{port}" in str(self.options["bind"])

    def root(self, name: str) -> str:
        return str(self.options["root"].format(root=self.env.root, name=name))

    def bind(self, name: str, port: int | None) -> str:
        return str(self.options["bind"].format(name=name, port=port, root=self.root(name)))

    def url(self, name: str, port: int | None) -> str:
        pattern = self.options["url"]
        if pattern is None:
            return f"http://{self.bind(name, port)}/"
        return str(pattern.format(name=name, port=port))

    def database(self, name: str) -> str:
        """The database name (or SQLite path pattern result) of instance ``name``."""
        return str(self.options["database"].format(name=name))

    def environment(self, name: str, port: int | None) -> conf.Environment:
        """Instance ``name`` as an environment the deploy engine deploys like any other."""
        server = dict(self.env.server.options)
        server["bind"] = self.bind(name, port)
        return dataclasses.replace(
            self.env,
            name=f"{self.name}{SEPARATOR}{name}",
            root=self.root(name),
            urls=(self.url(name, port),),
            server=conf.Server(type=self.env.server.type, options=server),
            instances=None,
        )

    def check_name(self, name: str) -> None:
        """Refuse a name that is not a plain lowercase word (no path characters)."""
        if not NAME_RE.match(name) or name in RESERVED_NAMES:
            reserved = ", ".join(sorted(RESERVED_NAMES))
            raise InstanceError(
                f"{name!r} is not a valid instance name: use 1-40 lowercase letters, digits "
                "and '-', starting with a letter or digit (e.g. 'feature-login', 'pr-123'), "
                f"other than {reserved}."
            )


# Checks ----------------------------------------------------------------------


def _problem(check_id: str, where: str, message: str, hint: str) -> conf.Problem:
    return conf.Problem(f"django_cd.{check_id}", f"{where}: {message}", hint)


def validate() -> list[conf.Problem]:
    """Every problem of every template in ``DJANGO_CD["ENVIRONMENTS"]``."""
    envs = conf.get_config()["ENVIRONMENTS"]
    if not isinstance(envs, Mapping):
        return []
    problems: list[conf.Problem] = []
    for name, env in envs.items():
        if isinstance(env, Mapping) and env.get("instances") is not None:
            problems += validate_template(name, env["instances"], env, envs)
    return problems


def validate_template(
    name: str,
    options: Any,
    env: Mapping[str, Any] | None = None,
    envs: Mapping[str, Any] | None = None,
) -> list[conf.Problem]:
    """The problems of one template's ``instances`` dict."""
    where = f"Environment {name!r} instances"
    if envs is None:
        envs = conf.get_config()["ENVIRONMENTS"]
    if env is None:
        env = envs.get(name, {}) if isinstance(envs, Mapping) else {}
    if not isinstance(options, Mapping):
        return [
            _problem(
                "E140",
                where,
                f"must be a dict, not {type(options).__name__}.",
                "E.g. {'ports': [8700, 8799], 'database': 'notes_{name}', "
                "'database_from': 'staging'}.",
            )
        ]
    problems: list[conf.Problem] = []
    unknown = sorted(set(options) - set(DEFAULTS))
    missing = [key for key in REQUIRED if options.get(key) is None]
    if unknown or missing:
        problems.append(
            _problem(
                "E140",
                where,
                (f"unknown key(s) {', '.join(map(repr, unknown))}. " if unknown else "")
                + (f"missing {', '.join(map(repr, missing))}." if missing else ""),
                f"The keys are {', '.join(DEFAULTS)}; database and database_from are required.",
            )
        )
    values = {**DEFAULTS, **options}
    problems += _validate_places(where, values)
    problems += _validate_source(where, name, values, envs)
    problems += _validate_limits(where, values, env)
    problems += _validate_ports(where, name, values, envs)
    return problems


def _pattern_ok(pattern: Any, allowed: set[str]) -> bool:
    if not isinstance(pattern, str) or not pattern:
        return False
    fields = set(re.findall(r"{(\w*)}", pattern))
    try:
        pattern.format(**{f: "x" for f in allowed})
    except (KeyError, IndexError, ValueError):
        return False
    return fields <= allowed


def _validate_places(where: str, values: Mapping[str, Any]) -> list[conf.Problem]:
    problems = []
    root = values["root"]
    if not (_pattern_ok(root, {"root", "name"}) and "{name}" in root) or not (
        root.startswith(("/", "{root}"))
    ):
        problems.append(
            _problem(
                "E141",
                where,
                f"root {root!r} is not an absolute path pattern holding {{name}}.",
                "E.g. '/srv/notes/testing/{name}' (or leave it out: '<root>/{name}').",
            )
        )
    bind, ports = values["bind"], values["ports"]
    bind_ok = _pattern_ok(bind, {"name", "port", "root"})
    if bind_ok and bind.startswith("unix:"):
        bind_ok = "{name}" in bind or "{root}" in bind
    elif bind_ok:
        bind_ok = "{port}" in bind
    if not bind_ok:
        problems.append(
            _problem(
                "E142",
                where,
                f"bind {bind!r} gives no instance an address of its own.",
                "Use '127.0.0.1:{port}' with a 'ports' range, or a socket such as "
                "'unix:{root}/shared/run/app.sock'.",
            )
        )
    elif "{port}" in bind and not _port_range(ports):
        problems.append(
            _problem(
                "E142",
                where,
                f"ports {ports!r} is not a range [first, last] of ports 1024-65535.",
                "E.g. 'ports': [8700, 8799]: each instance listens on one of them.",
            )
        )
    url = values["url"]
    if url is not None and not (
        _pattern_ok(url, {"name", "port"})
        and urlsplit(url.format(name="x", port=1)).scheme in ("http", "https")
    ):
        problems.append(
            _problem(
                "E143",
                where,
                f"url {url!r} is not an http(s) URL pattern.",
                "E.g. 'https://{name}.testing.example.com/' or 'http://127.0.0.1:{port}/'.",
            )
        )
    elif url is None and isinstance(bind, str) and bind.startswith("unix:"):
        problems.append(
            _problem(
                "E143",
                where,
                "an instance serving on a socket needs a 'url' pattern.",
                "E.g. 'https://{name}.testing.example.com/' (the proxy in front of the socket).",
            )
        )
    database = values["database"]
    if (
        "database" in values
        and database is not None
        and not (_pattern_ok(database, {"name"}) and "{name}" in database)
    ):
        problems.append(
            _problem(
                "E144",
                where,
                f"database {database!r} is not a pattern holding {{name}}.",
                "E.g. 'notes_{name}' (PostgreSQL, MySQL) or 'db-{name}.sqlite3' (SQLite).",
            )
        )
    variable = values["database_variable"]
    if not isinstance(variable, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", variable):
        problems.append(
            _problem(
                "E144",
                where,
                f"database_variable {variable!r} is not a variable name.",
                "E.g. 'DATABASE_URL': the shared/.env variable holding the database URL.",
            )
        )
    return problems


def _port_range(ports: Any) -> bool:
    return (
        isinstance(ports, list | tuple)
        and len(ports) == 2
        and all(isinstance(p, int) and not isinstance(p, bool) for p in ports)
        and 1024 <= ports[0] <= ports[1] <= 65535
    )


def _validate_source(
    where: str, name: str, values: Mapping[str, Any], envs: Any
) -> list[conf.Problem]:
    source = values["database_from"]
    if source is None:
        return []
    known = envs if isinstance(envs, Mapping) else {}
    definition = known.get(source)
    if source == name or not isinstance(definition, Mapping) or definition.get("instances"):
        return [
            _problem(
                "E145",
                where,
                f"database_from {source!r} is not another deployable environment.",
                "Name the environment whose database each instance copies, e.g. 'staging'.",
            )
        ]
    if definition.get("promote_from") is not None and values["copy_from_live"] is not True:
        return [
            _problem(
                "E146",
                where,
                f"database_from {source!r} is a live-like environment (it has promote_from): "
                "its data would be copied into every testing instance.",
                "Copy from staging instead, or set 'copy_from_live': True (with a 'scrub' "
                "command) if that is really meant.",
            )
        ]
    if not isinstance(values["copy_from_live"], bool):
        return [
            _problem(
                "E146", where, "copy_from_live must be True or False.", "Leave it out: False."
            )
        ]
    return []


def _validate_limits(
    where: str, values: Mapping[str, Any], env: Mapping[str, Any]
) -> list[conf.Problem]:
    problems = []
    count = values["max_instances"]
    size = values["max_database_mb"]
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        problems.append(
            _problem(
                "E147",
                where,
                f"max_instances must be a whole number of at least 1, not {count!r}.",
                "E.g. 10: creating one more is refused until one is destroyed or pruned.",
            )
        )
    if not isinstance(size, int | float) or isinstance(size, bool) or size <= 0:
        problems.append(
            _problem(
                "E147",
                where,
                f"max_database_mb must be a positive number of megabytes, not {size!r}.",
                "E.g. 1024: a larger source database is not copied.",
            )
        )
    scrub = values["scrub"]
    if scrub is not None and not conf._splits(scrub):
        problems.append(
            _problem(
                "E148",
                where,
                f"scrub {scrub!r} is not a manage.py command line.",
                "E.g. 'scrub_personal_data --yes' (see docs/instances.md), or None.",
            )
        )
    server = env.get("server", {}) if isinstance(env, Mapping) else {}
    server_type = server.get("type") if isinstance(server, Mapping) else None
    if server_type not in SERVER_TYPES:
        problems.append(
            _problem(
                "E149",
                where,
                f"server type {server_type!r} cannot give each instance a server of its own.",
                "Use {'type': 'gunicorn', 'wsgi': ...} or 'uwsgi': django-cd starts one "
                "server per instance, so restarting one never touches another.",
            )
        )
    elif isinstance(server, Mapping) and "bind" in server:
        problems.append(
            conf.Problem(
                "django_cd.W140",
                f"{where}: the server's 'bind' {server['bind']!r} is not used: each "
                "instance listens on its own address ('bind' and 'ports' of instances).",
                "Remove 'bind' from the template's server.",
            )
        )
    return problems


def _validate_ports(
    where: str, name: str, values: Mapping[str, Any], envs: Any
) -> list[conf.Problem]:
    if "{port}" not in str(values["bind"]) or not _port_range(values["ports"]):
        return []
    ports = range(values["ports"][0], values["ports"][1] + 1)
    problems = []
    for other, definition in envs.items() if isinstance(envs, Mapping) else []:
        server = definition.get("server") if isinstance(definition, Mapping) else None
        bind = server.get("bind") if isinstance(server, Mapping) else None
        port = bind.rpartition(":")[2] if isinstance(bind, str) else ""
        if other != name and port.isdigit() and int(port) in ports:
            problems.append(
                conf.Problem(
                    "django_cd.W141",
                    f"{where}: the ports include {port}, where environment {other!r} "
                    "listens; no instance is given that port.",
                    "Move the range off the other environments' ports.",
                )
            )
    return problems
