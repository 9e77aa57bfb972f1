"""cdinit: what it reads in settings files, the edits it makes or refuses to make, and
the command on real projects (``django-admin startproject``, real git) in temp dirs."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import django
import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from django_cd.cdinit import ProjectError, ProjectFacts, make_plan
from django_cd.cdinit.source import SettingsSource, environment_reads
from django_cd.management.commands.cdinit import Command
from tests.quickstart_support import BIN, QuickStart

MIDDLEWARE = "django_cd.middleware.ReleaseHeaderMiddleware"


def test_environment_reads_every_spelling() -> None:
    source = textwrap.dedent(
        """\
        import os
        import environ
        import dj_database_url
        from django_cd import env as cd_env
        env = environ.Env()
        A = os.environ["A"]
        B = os.environ.get("B", "x")
        C = os.getenv("C")
        D = env("D")
        E = env.bool("E", default=False)
        DATABASES = {"default": env.db()}
        F = cd_env.read({"F": cd_env.string(), "G": cd_env.secret()})
        OTHER = dj_database_url.config(env="H")
        os.environ.setdefault("NOT_READ", "1")
        """
    )
    assert environment_reads(SettingsSource(Path("s.py"), source).tree) == [
        "A",
        "B",
        "C",
        "D",
        "E",
        "DATABASE_URL",
        "F",
        "G",
        "H",
    ]


@pytest.mark.parametrize(
    ("source", "values"),
    [
        ('INSTALLED_APPS = ["a", "b"]\n', ("a", "b")),
        ("INSTALLED_APPS = ('a',)\n", ("a",)),
        ('INSTALLED_APPS = BASE + ["a"]\n', None),
        ('INSTALLED_APPS = ["a"]\nINSTALLED_APPS += ["b"]\n', None),
        ('INSTALLED_APPS = ["a"]\nINSTALLED_APPS.append("b")\n', None),
        ('INSTALLED_APPS = ["a", NAME]\n', None),
        ('INSTALLED_APPS = ["a"]\nif X:\n    INSTALLED_APPS = ["b"]\n', None),
    ],
)
def test_list_literal_only_when_certain(source: str, values: tuple[str, ...] | None) -> None:
    literal = SettingsSource(Path("s.py"), source).list_literal("INSTALLED_APPS")
    assert (literal.values if literal else None) == values


def git_repo(path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(path)], check=True)


def facts_for(tmp_path: Path, settings: str, **values: object) -> ProjectFacts:
    """Facts as inspect_project() finds them, for a settings file written here."""
    repo = tmp_path / "repo"
    (repo / "site").mkdir(parents=True)
    git_repo(repo)
    (repo / "manage.py").write_text("")
    path = repo / "site" / "settings.py"
    path.write_text(settings)
    defaults: dict[str, object] = {
        "manage_py": repo / "manage.py",
        "repo_root": repo,
        "settings_module": "site.settings",
        "settings_files": [path],
        "wsgi_module": "site.wsgi",
        "asgi_module": None,
        "requirements": [],
        "database": {"ENGINE": "django.db.backends.postgresql", "NAME": "site"},
        "static_root": "/static",
        "media_root": None,
        "installed_apps": [],
        "middleware": [],
        "url_path": "/",
    }
    return ProjectFacts(**{**defaults, **values})  # type: ignore[arg-type]


def settings_after(plan_changes: list, path: Path) -> str:  # type: ignore[type-arg]
    [change] = [c for c in plan_changes if c.path == path]
    return str(change.new)


def test_one_line_lists_and_middleware_already_listed(tmp_path: Path) -> None:
    settings = textwrap.dedent(
        f"""\
        import os
        INSTALLED_APPS = ["a", "b",]
        MIDDLEWARE = [
            "m.One",
            "{MIDDLEWARE}",
        ]
        SECRET_KEY = os.environ["KEY"]
        DEBUG = os.environ.get("DEBUG") == "1"
        ALLOWED_HOSTS = os.environ["HOSTS"].split(",")
        DATABASES = {{"default": {{"NAME": os.environ["DB"]}}}}
        """
    )
    facts = facts_for(
        tmp_path, settings, installed_apps=["a", "b"], middleware=["m.One", MIDDLEWARE]
    )
    plan = make_plan(facts, ["staging"], root=tmp_path / "deploy", backup=False)
    new = settings_after(plan.changes, facts.settings_files[0])
    assert 'INSTALLED_APPS = ["a", "b", "django_cd"]\n' in new
    assert '"backup": "never",' in new
    assert f'MIDDLEWARE = [\n    "{MIDDLEWARE}",\n    "m.One",\n]\n' in new
    # Settings that read the environment already are left alone; DJANGO_CD is added.
    assert "if os.environ.get(" not in new
    assert new.count('"root": ') == 1
    assert plan.manual == []


def test_requirements_gain_the_line_once(tmp_path: Path) -> None:
    facts = facts_for(tmp_path, "INSTALLED_APPS = []\n", requirements=["requirements.txt"])
    facts.installed_apps.append("dbbackup")
    requirements = facts.repo_root / "requirements.txt"
    requirements.write_text("Django>=5.2\n-r base.txt")
    plan = make_plan(facts, ["staging"], server="uwsgi", root=tmp_path / "deploy")
    change = next(c for c in plan.changes if c.path == requirements)
    assert change.new == "Django>=5.2\n-r base.txt\ndjango-cd-deploy[uwsgi,backup]\n"
    (facts.repo_root / "base.txt").write_text("django_cd_deploy[uwsgi]==0.1\n")
    plan = make_plan(facts, ["staging"], server="uwsgi", root=tmp_path / "deploy")
    assert requirements not in [c.path for c in plan.changes]


def test_media_root_inside_the_repository_is_read_from_the_environment(
    tmp_path: Path,
) -> None:
    settings = (
        "from pathlib import Path\nBASE_DIR = Path(__file__).parent\n"
        "MEDIA_ROOT = BASE_DIR / 'media'\n"
    )
    repo = tmp_path / "repo"
    facts = facts_for(tmp_path, settings, media_root=str(repo / "site" / "media"))
    plan = make_plan(facts, ["staging"], root=tmp_path / "deploy")
    new = settings_after(plan.changes, facts.settings_files[0])
    assert 'if os.environ.get("DJANGO_MEDIA_ROOT"):\n    MEDIA_ROOT = os.environ[' in new
    assert new.count("import os\n") == 1
    env_file = next(c for c in plan.changes if c.path.name == ".env")
    hint = f"# DJANGO_MEDIA_ROOT: outside the release, e.g. {tmp_path}/deploy/staging/shared/media"
    assert f"{hint}\nDJANGO_MEDIA_ROOT=\n" in env_file.new
    # Outside the repository already: left alone.
    plan = make_plan(
        facts_for(tmp_path / "b", settings, media_root="/srv/media"), ["staging"], root=tmp_path
    )
    assert "DJANGO_MEDIA_ROOT" not in plan.diff()


def test_command_server_environment(tmp_path: Path) -> None:
    facts = facts_for(tmp_path, "import os\nSTATIC_ROOT = '/s'\n", url_path="/admin/")
    plan = make_plan(
        facts, ["live"], server="command", root=tmp_path / "deploy", first_port=9100, backup=False
    )
    settings = settings_after(plan.changes, facts.settings_files[0])
    assert '"server": {"type": "command", "reload": "sudo systemctl reload repo-live"},' in (
        settings
    )
    assert '"urls": ["http://127.0.0.1:' in settings
    assert '"requirements": "requirements.txt",' in settings
    requirements = next(c for c in plan.changes if c.path.name == "requirements.txt")
    assert requirements.old is None
    assert requirements.new.splitlines()[2:] == [
        f"Django~={django.__version__}",
        "django-cd-deploy",
        "psycopg[binary]",
    ]


def test_existing_django_cd_gets_no_block_and_missing_environment_is_printed(
    tmp_path: Path,
) -> None:
    facts = facts_for(
        tmp_path,
        "DJANGO_CD = {'ENVIRONMENTS': {'staging': {}}}\n",
        environments={"staging": {"root": str(tmp_path / "deploy" / "staging")}},
        installed_apps=["django_cd"],
        middleware=[MIDDLEWARE],
    )
    plan = make_plan(facts, ["staging", "live"], root=tmp_path / "deploy")
    assert [c.path.name for c in plan.changes] == ["requirements.txt", ".env"]
    [manual] = plan.manual
    assert "DJANGO_CD is already set" in manual.reason
    assert manual.lines.startswith('    "live": {\n        "settings": "site.settings",\n')


def test_a_deploy_root_inside_the_repository_is_refused(tmp_path: Path) -> None:
    facts = facts_for(tmp_path, "")
    with pytest.raises(ProjectError, match="is inside the repository"):
        make_plan(facts, ["staging"], root=facts.repo_root / "deploy")


def test_an_unknown_server_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="Unknown server 'nginx'"):
        make_plan(facts_for(tmp_path, ""), ["staging"], server="nginx")


# -- the command, on real projects ------------------------------------------------------


@pytest.fixture
def quick(tmp_path: Path) -> QuickStart:
    return QuickStart(tmp_path, wheel=Path("unused.whl"))


def test_written_settings_keep_local_values_and_take_the_release_environment(
    quick: QuickStart,
) -> None:
    quick.startproject()
    quick.run("python -m django_cd cdinit --write")
    probe = (
        "python manage.py shell -v 0 -c 'from django.conf import settings as s; "
        'print(s.DEBUG, s.ALLOWED_HOSTS, s.DATABASES["default"]["NAME"], '
        "len(s.SECRET_KEY), s.STATIC_ROOT, s.MIDDLEWARE[0], s.INSTALLED_APPS[-1])'"
    )
    local = quick.sh(probe).stdout.split()
    assert local == [
        "True",
        "[]",
        str(quick.project / "db.sqlite3"),
        "66",
        str(quick.project / "staticfiles"),
        MIDDLEWARE,
        "dbbackup",
    ]
    deployed = {
        "DJANGO_SECRET_KEY": "k" * 50,
        "DJANGO_DEBUG": "false",
        "DJANGO_ALLOWED_HOSTS": "a.example,b.example",
        "DATABASE_URL": "sqlite:////srv/site/shared/db.sqlite3",
    }
    assert quick.sh(probe, extra=deployed).stdout.split()[:4] == [
        "False",
        "['a.example',",
        "'b.example']",
        "/srv/site/shared/db.sqlite3",
    ]
    env_file = quick.env_file().read_text()
    assert "DATABASE_URL=\n" in env_file
    assert f"sqlite:///{quick.env_file().parent}/db.sqlite3" in env_file


def test_an_existing_env_file_is_never_overwritten(quick: QuickStart) -> None:
    quick.startproject()
    quick.env_file().parent.mkdir(parents=True)
    quick.env_file().write_text("DATABASE_URL=sqlite:////keep/me\n")
    result = quick.run("python -m django_cd cdinit --write")
    assert quick.env_file().read_text() == "DATABASE_URL=sqlite:////keep/me\n"
    assert f"{quick.env_file()} exists: left as it is." in result.stdout


def test_lists_it_cannot_edit_are_printed_and_write_fails(quick: QuickStart) -> None:
    quick.startproject()
    settings = quick.project / "mysite" / "settings.py"
    text = settings.read_text().replace("INSTALLED_APPS = [", "INSTALLED_APPS = BASE_APPS = [")
    settings.write_text(text)
    shown = quick.run("python -m django_cd cdinit")
    assert 'INSTALLED_APPS = [*INSTALLED_APPS, "django_cd", "dbbackup"]' in shown.stdout
    result = quick.sh("python -m django_cd cdinit --write", check=False)
    assert result.returncode == 1
    assert "1 change(s) could not be made with certainty" in result.stderr
    assert "INSTALLED_APPS = BASE_APPS = [" in settings.read_text()
    assert f"'{MIDDLEWARE}'," in settings.read_text()  # what was certain is written


def test_not_a_git_repository(quick: QuickStart) -> None:
    subprocess.run(
        [str(BIN / "django-admin"), "startproject", "mysite"], cwd=quick.base, check=True
    )
    result = quick.sh("python -m django_cd cdinit", check=False)
    assert result.returncode == 1
    assert f"{quick.project} is not in a git repository" in result.stderr
    assert "git init && git add -A" in result.stderr
    assert not (quick.project / "requirements.txt").exists()


def test_no_manage_py(quick: QuickStart) -> None:
    quick.project.mkdir()
    result = quick.sh("python -m django_cd cdinit --write", check=False)
    assert result.returncode == 1
    assert f"No manage.py in {quick.project}" in result.stderr


def test_unknown_server_option(quick: QuickStart) -> None:
    quick.startproject()
    result = quick.sh("python -m django_cd cdinit --server nginx", check=False)
    assert result.returncode != 0
    assert "invalid choice: 'nginx' (choose from 'gunicorn', 'uwsgi', 'command')" in result.stderr


# -- the command in this process, on the settings a stock project loads ---------------

LOADED = ("INSTALLED_APPS", "MIDDLEWARE", "STATIC_ROOT", "MEDIA_ROOT", "WSGI_APPLICATION")


def run_in_process(project: Path, *args: str) -> str:
    """``manage.py cdinit`` as if ``project``'s settings were the ones loaded."""
    path = project / "mysite" / "settings.py"
    namespace: dict[str, object] = {"__file__": str(path)}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    values = {name: namespace.get(name) for name in LOADED}
    values["DJANGO_CD"] = namespace.get("DJANGO_CD", {})
    stdout = StringIO()
    with override_settings(**values):
        call_command(Command(), *args, stdout=stdout, stderr=StringIO())
    return stdout.getvalue()


@pytest.fixture
def stock(quick: QuickStart, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    quick.startproject()
    monkeypatch.chdir(quick.project)
    monkeypatch.syspath_prepend(str(quick.project))
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "mysite.settings")
    yield quick.project
    for name in [m for m in sys.modules if m == "mysite" or m.startswith("mysite.")]:
        del sys.modules[name]


def test_in_process_show_write_then_nothing_to_do(stock: Path, tmp_path: Path) -> None:
    settings = stock / "mysite" / "settings.py"
    original = settings.read_bytes()
    root = ["--root", str(tmp_path / "deploys"), "--env", "staging", "--env", "live"]
    shown = run_in_process(stock, *root)
    assert settings.read_bytes() == original
    assert "Nothing was written: run again with --write to apply this." in shown
    assert f"Project mysite: repository {stock}, manage.py at manage.py" in shown
    assert f'"root": "{tmp_path}/deploys/live",' in shown

    written = run_in_process(stock, *root, "--write")
    assert f"give each variable in {tmp_path}/deploys/live/shared/.env a value" in written
    files = {p: p.read_bytes() for p in [settings, stock / "requirements.txt"]}
    # django-dbbackup is installed here: backups before migrations, SQLite's as file copies.
    assert b'"dbbackup.db.sqlite.SqliteCPConnector"' in files[settings]
    assert b'"backup": "never"' not in files[settings]
    assert files[stock / "requirements.txt"].endswith(b"\ndjango-cd-deploy[gunicorn,backup]\n")
    again = run_in_process(stock, *root, "--write")
    assert "Nothing to do: mysite is set up for django-cd." in again
    assert {p: p.read_bytes() for p in files} == files


def test_in_process_errors_name_the_fix(stock: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (stock / "manage.py").rename(stock / "manage_.py")
    with pytest.raises(CommandError, match=f"No manage.py in {stock}: .* Fix: run it from"):
        run_in_process(stock)
    (stock / "manage_.py").rename(stock / "manage.py")
    with pytest.raises(CommandError, match="'Live' is not an environment name"):
        run_in_process(stock, "--env", "Live")
    with pytest.raises(CommandError, match=r"inside the repository .* Fix: --root"):
        run_in_process(stock, "--root", str(stock / "deploys"))
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "tests.settings")
    with pytest.raises(CommandError, match=r"The settings module tests\.settings is not a file"):
        run_in_process(stock)
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "mysite.settings")
    shutil.rmtree(stock / ".git")
    with pytest.raises(CommandError, match=r"is not in a git repository: .* Fix: git init"):
        run_in_process(stock)
