"""The instance database: an engine-aware copy of the source environment's.

PostgreSQL: ``CREATE DATABASE ... TEMPLATE`` when no session is connected to the
source (a file-level copy, several times faster, BENCHMARKS.md), else ``pg_dump |
pg_restore`` in one transaction. SQLite: the online backup API. MySQL/MariaDB:
``mysqldump --single-transaction | mysql``. Passwords travel in the child's
environment or a private file, never on a command line, and never in a message.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import environ

from django_cd.instances.config import InstanceError
from django_cd.pipeline.secrets import mask

ENGINES = {
    "django.db.backends.postgresql": "postgresql",
    "django.db.backends.sqlite3": "sqlite",
    "django.db.backends.mysql": "mysql",
}
COPY_TIMEOUT = 3600.0


@dataclass(frozen=True)
class Database:
    """One database, as a ``DATABASE_URL`` names it."""

    engine: str
    name: str
    url: str
    user: str = ""
    password: str = ""
    host: str = ""
    port: str = ""

    @classmethod
    def from_url(cls, url: str, where: str) -> Database:
        try:
            config: dict[str, Any] = environ.Env.db_url_config(url)
        except Exception:  # django-environ raises bare Exceptions for unknown schemes
            raise InstanceError(f"{where} is not a database URL django-environ reads.") from None
        engine = ENGINES.get(str(config.get("ENGINE")))
        if engine is None:
            raise InstanceError(
                f"{where} names a database engine instances cannot copy: use PostgreSQL, "
                "SQLite or MySQL/MariaDB."
            )
        return cls(
            engine=engine,
            name=str(config.get("NAME") or ""),
            url=url,
            user=str(config.get("USER") or ""),
            password=str(config.get("PASSWORD") or ""),
            host=str(config.get("HOST") or ""),
            port=str(config.get("PORT") or ""),
        )

    def renamed(self, name: str) -> Database:
        """This database's server and credentials, with database (or file) ``name``."""
        if self.engine == "sqlite":
            return replace(self, name=name, url=f"sqlite:///{name}")
        parts = urlsplit(self.url)
        path = "/" + quote(name, safe="")
        return replace(self, name=name, url=urlunsplit(parts._replace(path=path)))

    @property
    def secrets(self) -> list[str]:
        return [value for value in (self.password, self.url) if value]

    def describe(self) -> str:
        return f"{self.engine} database {self.name!r}"


@dataclass(frozen=True)
class CopyResult:
    method: str
    seconds: float


def _fail(message: str, output: str, db: Database) -> InstanceError:
    detail = mask(output.strip()[-2000:], db.secrets)
    return InstanceError(f"{message}\n{detail}".strip())


# The three engines ---------------------------------------------------------------------


def size_mb(db: Database) -> float:
    """The size of ``db`` in megabytes (what the copy will read)."""
    if db.engine == "sqlite":
        return os.path.getsize(db.name) / 2**20 if os.path.exists(db.name) else 0.0
    if db.engine == "postgresql":
        rows = _pg_query(db, "SELECT pg_database_size(%s)", (db.name,), dbname=db.name)
        return int(rows[0][0]) / 2**20
    out = _mysql(db, ["-N", "-e", _MYSQL_SIZE.format(name=db.name.replace("'", "''"))])
    return float(out.strip() or 0) / 2**20


def exists(db: Database) -> bool:
    if db.engine == "sqlite":
        return os.path.exists(db.name)
    if db.engine == "postgresql":
        return bool(_pg_query(db, "SELECT 1 FROM pg_database WHERE datname = %s", (db.name,)))
    out = _mysql(db, ["-N", "-e", f"SHOW DATABASES LIKE '{_mysql_like(db.name)}'"])
    return bool(out.strip())


def copy(source: Database, target: Database, *, method: str = "auto") -> CopyResult:
    """Copy ``source`` into the new database ``target`` (which must not exist).

    ``method`` (PostgreSQL only): ``auto``, ``template`` or ``dump``. A copy that
    fails leaves no target behind.
    """
    if exists(target):  # never dropped below: it is not ours
        raise InstanceError(f"The {target.describe()} exists already; nothing was copied.")
    started = time.monotonic()
    try:
        if source.engine == "sqlite":
            used = _sqlite_copy(source, target)
        elif source.engine == "postgresql":
            used = _pg_copy(source, target, method)
        else:
            used = _mysql_copy(source, target)
    except BaseException:
        with contextlib.suppress(InstanceError, OSError):
            drop(target)
        raise
    return CopyResult(used, time.monotonic() - started)


def drop(db: Database) -> None:
    """Drop ``db`` (its sessions closed first); nothing when it does not exist."""
    if db.engine == "sqlite":
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(db.name + suffix)
        return
    if db.engine == "postgresql":
        _pg_execute(db, f"DROP DATABASE IF EXISTS {_pg_ident(db.name)} WITH (FORCE)")
        return
    _mysql(db, ["-e", f"DROP DATABASE IF EXISTS {_mysql_ident(db.name)}"])


# SQLite ---------------------------------------------------------------------------------


def _sqlite_copy(source: Database, target: Database) -> str:
    if not os.path.exists(source.name):
        raise InstanceError(f"The SQLite database {source.name} does not exist.")
    Path(target.name).parent.mkdir(parents=True, exist_ok=True)
    # Read-only: the copy can never write to the source, and the backup API copies a
    # consistent snapshot while the source keeps serving.
    reader = sqlite3.connect(f"file:{quote(source.name)}?mode=ro", uri=True)
    try:
        fd = os.open(target.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        writer = sqlite3.connect(target.name)
        try:
            reader.backup(writer)
        finally:
            writer.close()
    except FileExistsError:
        raise InstanceError(f"{target.name} exists already.") from None
    finally:
        reader.close()
    return "sqlite backup API"


# PostgreSQL ---------------------------------------------------------------------------


def _pg_connect(db: Database, dbname: str = "postgres") -> Any:
    try:
        import psycopg
    except ImportError:  # pragma: no cover - the dev extra installs it
        raise InstanceError("Copying PostgreSQL needs psycopg: pip install psycopg.") from None
    try:
        return psycopg.connect(
            host=db.host or None,
            port=db.port or None,
            user=db.user or None,
            password=db.password or None,
            dbname=dbname,
            autocommit=True,
            connect_timeout=10,
        )
    except psycopg.Error as error:
        raise _fail(f"Cannot connect to PostgreSQL for {db.describe()}.", str(error), db) from None


def _pg_query(
    db: Database, sql: str, params: Sequence[Any] = (), dbname: str = "postgres"
) -> list[tuple[Any, ...]]:
    with _pg_connect(db, dbname) as connection:
        return list(connection.execute(sql, params).fetchall())


def _pg_execute(db: Database, sql: str) -> None:
    import psycopg

    with _pg_connect(db) as connection:
        try:
            connection.execute(sql)
        except psycopg.Error as error:
            raise _fail(f"PostgreSQL refused: {sql.split(' WITH')[0]}.", str(error), db) from None


def _pg_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def pg_template_copy(source: Database, target: Database) -> bool:
    """``CREATE DATABASE target TEMPLATE source``; False when a session uses the source.

    PostgreSQL refuses the template copy while any other session is connected to
    the source (and makes new ones wait while it copies), so this never copies a
    database mid-write.
    """
    import psycopg

    with _pg_connect(target) as connection:
        try:
            connection.execute(
                f"CREATE DATABASE {_pg_ident(target.name)} TEMPLATE {_pg_ident(source.name)}"
            )
        except psycopg.errors.ObjectInUse:
            return False
        except psycopg.Error as error:
            raise _fail("CREATE DATABASE ... TEMPLATE failed.", str(error), target) from None
    return True


def pg_dump_copy(source: Database, target: Database) -> None:
    """``pg_dump -Fc | pg_restore`` into a new, empty ``target``, in one transaction."""
    _pg_execute(target, f"CREATE DATABASE {_pg_ident(target.name)}")
    dump = ["pg_dump", "--format=custom", "--compress=0", *_pg_args(source), source.name]
    restore = [
        "pg_restore", "--no-owner", "--no-privileges", "--single-transaction",
        "--exit-on-error", *_pg_args(target), "--dbname", target.name,
    ]  # fmt: skip
    _pipe(dump, _pg_env(source), restore, _pg_env(target), source, target)


def _pg_copy(source: Database, target: Database, method: str) -> str:
    if method in ("auto", "template") and pg_template_copy(source, target):
        return "CREATE DATABASE ... TEMPLATE"
    if method == "template":
        raise InstanceError(
            f"{source.describe()} has open sessions, so it cannot be a template right now."
        )
    pg_dump_copy(source, target)
    return "pg_dump | pg_restore"


def _pg_args(db: Database) -> list[str]:
    args = []
    if db.host:
        args += ["--host", db.host]
    if db.port:
        args += ["--port", db.port]
    if db.user:
        args += ["--username", db.user]
    return [*args, "--no-password"]


def _pg_env(db: Database) -> dict[str, str]:
    env = dict(os.environ)
    if db.password:
        env["PGPASSWORD"] = db.password
    return env


# MySQL / MariaDB ------------------------------------------------------------------------

_MYSQL_SIZE = (
    "SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.tables "
    "WHERE table_schema = '{name}'"
)


def _mysql_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _mysql_like(name: str) -> str:
    return name.replace("\\", "\\\\").replace("'", "''").replace("_", "\\_").replace("%", "\\%")


@contextlib.contextmanager
def _mysql_defaults(db: Database) -> Iterator[list[str]]:
    """A private option file holding the credentials (never the command line)."""
    lines = ["[client]"]
    for key, value in (("user", db.user), ("password", db.password), ("host", db.host)):
        if value:
            lines.append(f'{key}="{value}"')
    if db.port:
        lines.append(f"port={db.port}")
    fd, path = tempfile.mkstemp(prefix="django-cd-my-", suffix=".cnf")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        yield [f"--defaults-extra-file={path}"]
    finally:
        os.unlink(path)


def _mysql(db: Database, args: list[str]) -> str:
    with _mysql_defaults(db) as defaults:
        result = subprocess.run(
            ["mysql", *defaults, *args], capture_output=True, text=True, check=False
        )
    if result.returncode != 0:
        raise _fail(f"mysql failed for {db.describe()}.", result.stderr, db)
    return result.stdout


def _mysql_copy(source: Database, target: Database) -> str:
    _mysql(target, ["-e", f"CREATE DATABASE {_mysql_ident(target.name)}"])
    with _mysql_defaults(source) as source_defaults, _mysql_defaults(target) as target_defaults:
        dump = [
            "mysqldump", *source_defaults, "--single-transaction", "--routines",
            "--triggers", "--skip-lock-tables", source.name,
        ]  # fmt: skip
        load = ["mysql", *target_defaults, target.name]
        _pipe(dump, dict(os.environ), load, dict(os.environ), source, target)
    return "mysqldump | mysql"


# Both halves of a dump pipe --------------------------------------------------------------


def _pipe(
    first: list[str],
    first_env: dict[str, str],
    second: list[str],
    second_env: dict[str, str],
    source: Database,
    target: Database,
) -> None:
    """Run ``first | second``; both must succeed."""
    with tempfile.TemporaryFile() as first_err, tempfile.TemporaryFile() as second_err:
        producer = subprocess.Popen(first, stdout=subprocess.PIPE, stderr=first_err, env=first_env)
        assert producer.stdout is not None
        try:
            consumer = subprocess.run(
                second,
                stdin=producer.stdout,
                stdout=subprocess.DEVNULL,
                stderr=second_err,
                env=second_env,
                timeout=COPY_TIMEOUT,
                check=False,
            )
        finally:
            producer.stdout.close()
            producer_code = producer.wait(timeout=COPY_TIMEOUT)
        for code, err, argv, db in (
            (producer_code, first_err, first, source),
            (consumer.returncode, second_err, second, target),
        ):
            if code != 0:
                err.seek(0)
                raise _fail(
                    f"{argv[0]} failed (exit {code}) copying {source.describe()} "
                    f"to {target.describe()}.",
                    err.read().decode(errors="replace"),
                    db,
                )
