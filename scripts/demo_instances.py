"""``make demo-instances``: two testing instances from staging, side by side.

staging deployed -> two branches whose migrations change the same model
(``note.colour`` and ``note.priority``) -> an instance of each, on its own
fresh copy of staging's database and its own gunicorn (127.0.0.1:8610-8649)
-> both URLs serve their own branch, staging is unchanged -> both destroyed.
Local, SQLite, under var/deploy; re-runnable; any failure exits non-zero.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from demo import (  # the main demo's helpers: same clone, same deploy dir
    CLONE,
    DEPLOY_DIR,
    DemoFailed,
    make_clone,
    manage,
    run,
    stage,
    test_pipelines,
    write_env_file,
)

MIGRATION = """from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("notes", "0002_note_author_pinned")]
    operations = [migrations.AddField("note", "{column}", {field})]
"""
BRANCHES = {
    "demo-a": ("colour", "models.CharField(max_length=20, default='red')", "Board of branch A"),
    "demo-b": ("priority", "models.IntegerField(default=0)", "Board of branch B"),
}


def branch(name: str, base: str, column: str, field: str, title: str) -> None:
    """A branch from ``base`` adding ``note.<column>`` (migration, model, version file)
    and a title; the clone is back on ``base`` after."""
    run("git", "-C", str(CLONE), "checkout", "--quiet", "-B", name, base)
    notes = CLONE / "sampleproject" / "notes"
    migration = f"0003_note_{column}"
    (notes / "migrations" / f"{migration}.py").write_text(
        MIGRATION.format(column=column, field=field)
    )
    (notes / "migrations" / "version.txt").write_text(migration + "\n")
    models = notes / "models.py"
    text = models.read_text()
    models.write_text(
        text.replace("\n    class Meta:", f"\n    {column} = {field}\n\n    class Meta:")
    )
    views = notes / "views.py"
    views.write_text(views.read_text().replace('"Notes board"', f'"{title}"'))
    run("git", "-C", str(CLONE), "add", "-A")
    run("git", "-C", str(CLONE), "commit", "--quiet", "-m", f"{column} on notes; {title}")
    run("git", "-C", str(CLONE), "checkout", "--quiet", base)


def title_at(url: str) -> str:
    request = urllib.request.Request(url, headers={"X-Forwarded-Proto": "https"})
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read().decode()
    return body.split("<title>", 1)[1].split("</title>", 1)[0].strip()


def write_template_env_file() -> None:
    """The model of every instance's shared/.env ({root}: the instance's root)."""
    path = DEPLOY_DIR / "testing" / "shared" / ".env"
    if path.exists():
        print(f"  {path} exists; kept")
        return
    write_env_file("testing")
    text = path.read_text()
    lines = [
        line
        for line in text.splitlines()
        if not line.startswith(("DATABASE_URL=", "DJANGO_LOG_DIR="))
    ]
    lines += [
        "DATABASE_URL=sqlite:///{root}/shared/unused.sqlite3",
        "DJANGO_LOG_DIR={root}/shared/log",
        "DJANGO_SECURE_SSL_REDIRECT=false",
    ]
    path.write_text("\n".join(lines) + "\n")
    print(f"  {path}: the instances' DATABASE_URL and log directory follow their root")


def instances() -> list[dict[str, str]]:
    rows: list[dict[str, str]] = json.loads(manage("instance", "list", "--env=testing", "--json"))
    return rows


def destroy_all() -> None:
    if (CLONE / "sampleproject" / "manage.py").exists():
        for row in instances():
            manage("instance", "destroy", "--env=testing", row["name"])


def main() -> int:
    try:
        stage("1. shared/.env of staging, and of the testing template")
        write_env_file("staging")
        write_template_env_file()

        stage("2. A scratch clone; staging deployed (tests first: its gates require them)")
        make_clone()
        destroy_all()  # a previous run's instances, if any
        test_pipelines()
        manage("deploy", "--env=staging")
        staging_title = title_at("http://127.0.0.1:8601/")

        stage("3. Two branches whose migrations change the same model")
        base = run("git", "-C", str(CLONE), "rev-parse", "HEAD").strip()
        for name, (column, field, title) in BRANCHES.items():
            branch(name, base, column, field, title)

        stage("4. One instance per branch, each on a fresh copy of staging's database")
        urls = {}
        for name in BRANCHES:
            created = json.loads(
                manage("instance", "create", "--env=testing", name, "--ref", name, "--json")
            )
            urls[name] = created["url"]
            print(f"  {name}: {created['url']} (copy: {created['copy']['method']})")

        stage("5. Both serve their own branch; staging is unchanged")
        manage("instance", "list", "--env=testing")
        for name, (_, _, title) in BRANCHES.items():
            shown = title_at(urls[name])
            print(f"  {urls[name]} shows {shown!r}")
            if shown != title:
                raise DemoFailed(f"{name} shows {shown!r}, expected {title!r}")
        if title_at("http://127.0.0.1:8601/") != staging_title:
            raise DemoFailed("staging changed")
        print(f"  http://127.0.0.1:8601/ (staging) still shows {staging_title!r}")

        stage("6. Both destroyed: servers stopped, databases dropped, roots removed")
        destroy_all()
        if instances():
            raise DemoFailed("instances are left")
        for name in BRANCHES:
            if (DEPLOY_DIR / "testing" / name).exists():
                raise DemoFailed(f"the root of {name} is left")
        manage("instance", "list", "--env=testing")
    except (DemoFailed, urllib.error.URLError, OSError, ValueError) as error:
        print(f"\nDEMO FAILED: {error}", file=sys.stderr)
        return 1
    finally:
        stage("Stopping the demo's servers")
        try:
            destroy_all()
            manage("server", "stop", "--env=staging")
        except DemoFailed as error:
            print(f"  {error}", file=sys.stderr)
    print("\nDemo complete: two branches served side by side from copies of staging, then gone.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
