"""``make demo``: the whole pipeline, end to end, on this machine.

tests by pipeline -> deploy to staging -> a change committed in a scratch clone,
tested -> deploy again -> the page shows the change -> rollback -> the page shows
the old text -> live refuses a commit that has not passed staging -> live
promotes the newest commit that did -> a feature flag switched on in staging,
off in live, then promoted from staging to live (export, reviewed diff,
import). Staging and live are local environments under var/deploy/<env>
(SQLite, secrets in shared/.env, gunicorn on 127.0.0.1:8601 and :8602).
Re-runnable; the servers are stopped at the end; any failure exits non-zero.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VAR = REPO / "var"
DEPLOY_DIR = VAR / "deploy"
CLONE = VAR / "demo" / "clone"
URLS = {"staging": "http://127.0.0.1:8601/", "live": "http://127.0.0.1:8602/"}
OLD_TITLE = "Notes board"
NEW_TITLE = "Notes board, deployed continuously"


class DemoFailed(Exception):
    pass


def stage(title: str) -> None:
    print(f"\n=== {title}", flush=True)


def run(
    *args: str, cwd: Path = REPO, env: dict[str, str] | None = None, refused: bool = False
) -> str:
    """Run a command, echoing it; its output goes through; failure stops the demo.

    With ``refused``, the command must fail instead (a gate saying no).
    """
    print("$ " + " ".join(args), flush=True)
    started = time.monotonic()
    result = subprocess.run(
        args, cwd=cwd, env={**os.environ, **(env or {})}, text=True, capture_output=True
    )
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    if refused:
        if result.returncode == 0:
            raise DemoFailed(f"{' '.join(args[:4])} ... should have been refused")
        print(f"  (refused, as it should be: exit {result.returncode})")
        return result.stdout
    if result.returncode != 0:
        raise DemoFailed(f"{' '.join(args[:4])} ... exited {result.returncode}")
    print(f"  ({time.monotonic() - started:.1f} s)")
    return result.stdout


def manage(*args: str, checkout: Path = CLONE, refused: bool = False) -> str:
    env = {"DJANGO_SETTINGS_MODULE": "settings.dev", "DJANGO_CD_DEPLOY_DIR": str(DEPLOY_DIR)}
    return run(
        sys.executable,
        str(checkout / "sampleproject" / "manage.py"),
        *args,
        env=env,
        refused=refused,
    )


def test_pipelines(checkout: Path = CLONE) -> None:
    """unit, then functional (JUnit XML, coverage): the results the gates ask for."""
    for pipeline, extra in (("unit", ()), ("functional", ("--coverage",))):
        report = str(VAR / "reports" / f"{pipeline}.xml")
        run(sys.executable, "manage.py", "test", f"--pipeline={pipeline}",
            "--junit-xml", report, *extra, cwd=checkout / "sampleproject",
            env={"DJANGO_SETTINGS_MODULE": "settings.test"})  # fmt: skip


def page(env: str) -> tuple[str, str]:
    """The board's title and the release that served it."""
    request = urllib.request.Request(URLS[env], headers={"X-Forwarded-Proto": "https"})
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read().decode()
        release = response.headers.get("X-Release", "?")
    title = body.split("<title>", 1)[1].split("</title>", 1)[0].strip()
    return title, release


def expect_title(env: str, title: str) -> None:
    shown, release = page(env)
    print(f"  {URLS[env]} shows {shown!r} (release {release})")
    if shown != title:
        raise DemoFailed(f"{env} shows {shown!r}, expected {title!r}")


def write_env_file(env: str) -> None:
    """A sample shared/.env for the demo; an existing one is never overwritten."""
    shared = DEPLOY_DIR / env / "shared"
    path = shared / ".env"
    if path.exists():
        print(f"  {path} exists; kept")
        return
    shared.mkdir(parents=True, exist_ok=True)
    lines = [
        f"DJANGO_SECRET_KEY={secrets.token_urlsafe(50)}",
        f"DATABASE_URL=sqlite:///{shared / 'db.sqlite3'}",
        "DJANGO_ALLOWED_HOSTS=127.0.0.1,localhost",
        f"DJANGO_LOG_DIR={shared / 'log'}",
        f"DJANGO_CD_DEPLOY_DIR={DEPLOY_DIR}",
    ]
    if env == "staging":
        lines.append("DJANGO_SECURE_SSL_REDIRECT=false")
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    print(f"  wrote {path} (secrets not shown)")


def flags(env: str, *args: str) -> str:
    """``manage.py flags ...`` in the environment's current release, as on the host."""
    release = DEPLOY_DIR / env / "current"
    environ = {
        "DJANGO_SETTINGS_MODULE": f"settings.{env}",
        "DJANGO_ENV_FILE": str(DEPLOY_DIR / env / "shared" / ".env"),
    }
    python = str(release / ".venv" / "bin" / "python")
    manage_py = str(release / "sampleproject" / "manage.py")
    return run(python, manage_py, "flags", *args, cwd=release, env=environ)


def expect_board_link(env: str, shown: bool) -> None:
    request = urllib.request.Request(URLS[env], headers={"X-Forwarded-Proto": "https"})
    with urllib.request.urlopen(request, timeout=10) as response:
        found = 'id="board-stats"' in response.read().decode()
    print(f"  {URLS[env]} {'shows' if found else 'does not show'} the flagged 'Board stats' link")
    if found != shown:
        raise DemoFailed(f"{env}: the board_stats link is {'' if found else 'not '}shown")


def promote_flags() -> None:
    for env in URLS:
        flags(env, "reconcile")
    flags("staging", "on", "board_stats", "--reason", "demo: try it on staging")
    flags("live", "off", "board_stats", "--reason", "demo: dark on live")
    expect_board_link("staging", True)
    expect_board_link("live", False)
    exported = VAR / "demo" / "flags-staging.json"
    exported.write_text(flags("staging", "export", "--json"))
    print(f"  staging's flag states written to {exported}")
    flags("live", "import", str(exported), "--dry-run")
    flags("live", "import", str(exported), "--yes", "--reason", "demo: promote staging")
    expect_board_link("live", True)
    flags("live", "history", "board_stats")


def make_clone() -> None:
    shutil.rmtree(CLONE, ignore_errors=True)
    CLONE.parent.mkdir(parents=True, exist_ok=True)
    run("git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(CLONE))
    run("git", "-C", str(CLONE), "config", "user.name", "Demo Deployer")
    run("git", "-C", str(CLONE), "config", "user.email", "demo@example.com")


def commit_untested_change() -> None:
    readme = CLONE / "sampleproject" / "notes" / "views.py"
    readme.write_text(readme.read_text() + "\n# A change nobody has deployed to staging.\n")
    run("git", "-C", str(CLONE), "commit", "--quiet", "-am", "An untested change")


def commit_change() -> None:
    views = CLONE / "sampleproject" / "notes" / "views.py"
    text = views.read_text()
    old = f'BOARD_TITLE = "{OLD_TITLE}"'
    if old not in text:
        raise DemoFailed(f"{views} no longer sets {old}")
    views.write_text(text.replace(old, f'BOARD_TITLE = "{NEW_TITLE}"'))
    run("git", "-C", str(CLONE), "commit", "--quiet", "-am", f"Board title: {NEW_TITLE}")


def stop_servers(checkout: Path) -> None:
    for env in URLS:
        if (checkout / "sampleproject" / "manage.py").exists():
            manage("server", "stop", f"--env={env}", checkout=checkout)


def main() -> int:
    try:
        stage("1. Secrets for staging and live: each environment's shared/.env")
        for env in URLS:
            write_env_file(env)

        stage("2. A scratch clone of this repository to deploy from")
        make_clone()
        stop_servers(CLONE)  # a previous run's servers, if any

        stage("3. Tests by pipeline in the clone: unit, then functional (JUnit XML, coverage)")
        test_pipelines()

        stage("4. Deploy to staging (the gates first: staging requires unit and functional)")
        # After the switch: smoke checks, a 10 s watch, and a mail to ops (the console here).
        manage("deploy", "--env=staging")
        expect_title("staging", OLD_TITLE)
        manage("smoketest", "--env=staging")

        stage("5. A change, committed in the clone, tested, deployed again")
        commit_change()
        test_pipelines()
        manage("deploy", "--env=staging", "--dry-run")
        manage("deploy", "--env=staging")
        expect_title("staging", NEW_TITLE)

        stage("6. Rollback")
        started = time.monotonic()
        manage("rollback", "--env=staging")
        expect_title("staging", OLD_TITLE)
        seconds = time.monotonic() - started
        print(f"  the old release answered {seconds:.1f} s after the command started")
        manage("releases", "--env=staging")

        stage("7. Live refuses a commit that has not passed staging")
        commit_untested_change()
        test_pipelines()
        manage("predeploy", "--env=live", "--ref=HEAD", refused=True)
        manage("deploy", "--env=live", "--ref=HEAD", refused=True)

        stage("8. Live promotes the newest commit that passed staging (no --ref)")
        manage("predeploy", "--env=live")
        manage("deploy", "--env=live")
        expect_title("live", NEW_TITLE)
        manage("releases", "--env=live")

        stage("9. A feature flag: on in staging, off in live, then promoted to live")
        promote_flags()
    except (DemoFailed, urllib.error.URLError, OSError) as error:
        print(f"\nDEMO FAILED: {error}", file=sys.stderr)
        return 1
    finally:
        stage("Stopping the demo's servers")
        try:
            stop_servers(CLONE)
        except DemoFailed as error:
            print(f"  {error}", file=sys.stderr)
    print(
        "\nDemo complete: staging and live deployed, a change shipped and rolled back, "
        "a flag promoted."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
