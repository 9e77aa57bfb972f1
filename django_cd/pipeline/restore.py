"""Restore a backup so that the database *equals* it.

``dbrestore`` with ``pg_restore --clean`` drops only what the dump holds: a
table, sequence or index that the failed release created survives the
restore, and the fixed release that creates it again fails (``relation
"notes_tag" already exists``). On PostgreSQL the restore therefore runs in
one transaction: drop every object of the ``public`` schema (not those of
extensions), then load the dump; any error rolls the whole of it back, and
the database is as it was before the restore. Other databases go through
``dbrestore`` (SQLite's restore replaces the whole file).

Runs inside the release (``manage.py shell -c``) so it connects with the
target's settings and ``shared/.env``; the password reaches ``psql`` through
its environment, never its command line.
"""

from __future__ import annotations

from django_cd.pipeline.errors import StepFailed
from django_cd.pipeline.release import Release

MARKER = "@@django-cd-restore@@"

# Each query writes DROP statements that psql's \gexec runs, in the restore's
# transaction. Objects that belong to an extension are the extension's.
DROP_PUBLIC_SQL = r"""
SELECT format('DROP %s IF EXISTS %I.%I CASCADE',
    CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
        WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
    n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY c.relkind = 'S'
\gexec
SELECT format('DROP ROUTINE IF EXISTS %s CASCADE', p.oid::regprocedure)
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'public' AND p.prokind IN ('f', 'p')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                  AND d.objid = p.oid AND d.deptype = 'e')
\gexec
SELECT format('DROP TYPE IF EXISTS %I.%I CASCADE', n.nspname, t.typname)
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd', 'c', 'r')
  AND (t.typtype <> 'c' OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass
                  AND d.objid = t.oid AND d.deptype = 'e')
\gexec
"""

RESTORE_CODE = """
import os, subprocess, sys
from django.db import connections
connection = connections["default"]
if connection.vendor != "postgresql":
    print(%(marker)r + "other")
    sys.exit(0)
connection.close()
settings = connection.settings_dict
env = dict(os.environ)
for key, variable in (("HOST", "PGHOST"), ("PORT", "PGPORT"), ("USER", "PGUSER"),
                      ("PASSWORD", "PGPASSWORD"), ("NAME", "PGDATABASE")):
    if settings.get(key):
        env[variable] = str(settings[key])
if settings.get("OPTIONS", {}).get("sslmode"):
    env["PGSSLMODE"] = settings["OPTIONS"]["sslmode"]
path = %(path)r
with open(path, "rb") as dump:
    custom_format = dump.read(5) == b"PGDMP"
if custom_format:
    # pg_dump's custom format, as django-dbbackup's binary connector writes it.
    script = subprocess.run(["pg_restore", "--no-owner", "-f", "-", path],
                            capture_output=True, env=env)
    if script.returncode:
        sys.exit("pg_restore could not read the backup: " + script.stderr.decode(errors="replace"))
    sql = script.stdout
else:
    with open(path, "rb") as dump:
        sql = dump.read()
result = subprocess.run(
    ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "-f", "-"],
    input=%(drop)r.encode() + sql, capture_output=True, env=env)
sys.stdout.write(result.stderr.decode(errors="replace")[-4000:])
if result.returncode:
    sys.exit("psql failed: the restore was rolled back, the database is unchanged.")
print(%(marker)r + "postgresql")
"""


def restore_clean(release: Release, path: str, step: str) -> bool:
    """Restore ``path`` on PostgreSQL into a clean ``public`` schema, in one transaction.

    Returns False when the database is not PostgreSQL (nothing done: use
    ``dbrestore``); raises ``StepFailed`` when the restore failed (then the
    database is unchanged).
    """
    code = RESTORE_CODE % {"marker": MARKER, "path": path, "drop": DROP_PUBLIC_SQL}
    result = release.manage("shell", "-v", "0", "-c", code, timeout=3600)
    vendor = None
    for line in result.output.splitlines():
        if line.startswith(MARKER):
            vendor = line[len(MARKER) :].strip()
    if not result.ok or vendor is None:
        raise StepFailed(
            step,
            f"Restoring {path} failed; the restore ran in one transaction, so the "
            "database is as it was before it.",
            result.output,
        )
    return vendor == "postgresql"
