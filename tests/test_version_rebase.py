"""Two branches each add migrations to one app; git conflicts on version.txt;
``migrationversion --rebase`` renumbers the incoming chain; ``migrate`` applies it.

Everything is real: a git repository in a temp dir, a tiny Django project,
``manage.py`` subprocesses and a SQLite file database.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.miniproject import MiniProject

SHOP_MODELS = """\
from django.db import models


class Product(models.Model):
    name = models.CharField(max_length=50)
{product_fields}
    def __str__(self):
        return self.name


# Other models live far below, so that two branches editing Product and
# Category merge cleanly in git: only version.txt conflicts.


class Category(models.Model):
    title = models.CharField(max_length=50)
{category_fields}
"""

ORDERS_MODELS = """\
from django.db import models


class Order(models.Model):
    number = models.IntegerField()
{fields}
"""


def shop(product: str = "", category: str = "") -> str:
    return SHOP_MODELS.format(product_fields=product, category_fields=category)


def dependencies(project: MiniProject, label: str, name: str) -> list[tuple[str, str]]:
    """The ("shop", name) dependencies written in one migration file."""
    source = (project.root / label / "migrations" / f"{name}.py").read_text()
    return re.findall(r"""\(['"](shop)['"], ['"](\w+)['"]\)""", source)


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file()
        and ".git" not in p.parts
        and "__pycache__" not in p.parts
        and p.name != "db.sqlite3"
    }


@pytest.fixture
def repo(tmp_path: Path) -> MiniProject:
    """main: shop.0001_initial and orders.0001_initial, version files, one commit."""
    project = MiniProject.create(
        tmp_path / "repo", {"shop": shop(), "orders": ORDERS_MODELS.format(fields="")}
    )
    out = project.manage("makemigrations", "shop", "orders").stdout
    assert "shop/migrations/version.txt: 0001_initial" in out
    assert project.version("shop") == "0001_initial\n"
    assert project.version("orders") == "0001_initial\n"
    project.git("init", "-q", "-b", "main")
    project.git("add", ".")
    project.git("commit", "-qm", "initial")
    return project


def make_branches(project: MiniProject) -> None:
    # The other pull request, merged into main first: one migration.
    project.write_models("shop", shop(category="    description = models.TextField(default='')"))
    project.manage("makemigrations", "shop", "--name", "category_description")
    assert project.version("shop") == "0002_category_description\n"
    project.git("add", ".")
    project.git("commit", "-qm", "category description")

    # Our branch, from the initial commit: three shop migrations and an orders
    # migration that depends on shop's leaf.
    project.git("checkout", "-q", "-b", "feature", "HEAD~1")
    sku = "    sku = models.CharField(max_length=20, default='')\n"
    project.write_models("shop", shop(product=sku))
    project.manage("makemigrations", "shop", "--name", "sku")
    project.write_models("shop", shop(product=sku + "    stock = models.IntegerField(default=0)"))
    project.manage("makemigrations", "shop")
    project.manage("makemigrations", "shop", "--empty", "--name", "backfill")
    project.write_models(
        "orders",
        ORDERS_MODELS.format(
            fields="    product = models.ForeignKey('shop.Product', models.CASCADE, null=True)"
        ),
    )
    project.manage("makemigrations", "orders", "--name", "order_product")
    assert project.migrations("shop") == [
        "0001_initial",
        "0002_sku",
        "0003_product_stock",
        "0004_backfill",
    ]
    assert project.version("shop") == "0004_backfill\n"
    assert project.version("orders") == "0002_order_product\n"
    assert dependencies(project, "orders", "0002_order_product") == [("shop", "0004_backfill")]
    project.git("add", ".")
    project.git("commit", "-qm", "feature: sku, stock, backfill")


def merge_feature(project: MiniProject) -> None:
    project.git("checkout", "-q", "main")
    merge = project.git("merge", "--no-edit", "feature", check=False)
    assert merge.returncode == 1
    assert "CONFLICT (content): Merge conflict in shop/migrations/version.txt" in merge.stdout
    conflicted = project.git("diff", "--name-only", "--diff-filter=U").stdout.split()
    assert conflicted == ["shop/migrations/version.txt"]


def test_merge_conflict_rebase_and_migrate(repo: MiniProject) -> None:
    make_branches(repo)
    # The feature's migrations are applied in the local database.
    repo.manage("migrate", "shop")
    merge_feature(repo)

    check = repo.manage("check", check=False)
    assert check.returncode == 1
    assert "django_cd.E031" in check.stderr
    assert "django_cd.E036" in check.stderr
    assert "leaf nodes (0002_category_description, 0004_backfill)" in check.stderr

    # Refused: 0002_sku..0004_backfill are applied locally; nothing is written.
    before = snapshot(repo.root)
    refused = repo.manage("migrationversion", "--rebase", "shop", check=False)
    assert refused.returncode == 1
    assert (
        "CommandError: Cannot renumber shop migration(s) 0002_sku, 0003_product_stock, "
        "0004_backfill: applied in the database 'default'. Abort the merge (git merge --abort, "
        "or git rebase --abort), unapply them on your branch (manage.py migrate shop "
        "0001_initial), then merge and run the rebase again."
    ) in refused.stderr
    assert snapshot(repo.root) == before

    # Do what the message says.
    repo.git("merge", "--abort")
    repo.git("checkout", "-q", "feature")
    repo.manage("migrate", "shop", "0001_initial")
    merge_feature(repo)

    rebased = repo.manage("migrationversion", "--rebase", "shop").stdout.splitlines()
    assert rebased[:5] == [
        "shop: renamed 0002_sku -> 0003_sku",
        "shop: renamed 0003_product_stock -> 0004_product_stock",
        "shop: renamed 0004_backfill -> 0005_backfill",
        f"shop: rewrote dependencies in {repo.root / 'orders/migrations/0002_order_product.py'}",
        "shop: version.txt now names 0005_backfill.",
    ]
    assert repo.migrations("shop") == [
        "0001_initial",
        "0002_category_description",
        "0003_sku",
        "0004_product_stock",
        "0005_backfill",
    ]
    assert repo.version("shop") == "0005_backfill\n"
    assert dependencies(repo, "shop", "0003_sku") == [("shop", "0002_category_description")]
    assert dependencies(repo, "shop", "0004_product_stock") == [("shop", "0003_sku")]
    assert dependencies(repo, "shop", "0005_backfill") == [("shop", "0004_product_stock")]
    assert dependencies(repo, "orders", "0002_order_product") == [("shop", "0005_backfill")]

    # The history is linear: migrate applies it in order, and every check passes.
    plan = re.findall(r"^(\w+)\.(\w+)$", repo.manage("migrate", "--plan").stdout, re.M)
    assert [step for step in plan if step[0] == "shop"] == [
        ("shop", "0002_category_description"),
        ("shop", "0003_sku"),
        ("shop", "0004_product_stock"),
        ("shop", "0005_backfill"),
    ]
    assert plan.index(("orders", "0002_order_product")) > plan.index(("shop", "0005_backfill"))
    migrated = repo.manage("migrate").stdout
    assert "Applying shop.0005_backfill... OK" in migrated
    assert repo.manage("migrationversion", "--check").stdout == (
        "Every version.txt names its app's leaf.\n"
    )
    assert repo.manage("check").stdout == "System check identified no issues (0 silenced).\n"
    assert "No changes detected" in repo.manage("makemigrations", "--check").stdout

    repo.git("add", ".")
    repo.git("commit", "-qm", "merge feature")
    assert repo.git("status", "--porcelain").stdout == ""

    # A second rebase has no conflict to resolve.
    again = repo.manage("migrationversion", "--rebase", "shop", check=False)
    assert again.returncode == 1
    assert (
        f"CommandError: {repo.root / 'shop/migrations/version.txt'} has no git conflict "
        "markers (it names '0005_backfill'), so there is nothing to rebase."
    ) in again.stderr


def test_git_rebase_renumbers_our_commits(repo: MiniProject) -> None:
    """With ``git rebase main``, the incoming side is our branch's commit being replayed."""
    make_branches(repo)
    rebase = repo.git("rebase", "main", check=False)
    assert rebase.returncode == 1
    assert "Merge conflict in shop/migrations/version.txt" in rebase.stdout
    conflict = (repo.root / "shop/migrations/version.txt").read_text()
    assert conflict.splitlines()[1:4] == ["0002_category_description", "=======", "0004_backfill"]

    out = repo.manage("migrationversion", "--rebase", "shop", "--json").stdout
    assert '"leaf": "0005_backfill"' in out
    assert '"kept": "0002_category_description"' in out
    repo.git("add", ".")
    cont = repo.git("-c", "core.editor=true", "rebase", "--continue")
    assert cont.returncode == 0
    assert repo.git("log", "--format=%s").stdout.split("\n")[:3] == [
        "feature: sku, stock, backfill",
        "category description",
        "initial",
    ]
    assert repo.manage("migrationversion", "--check").returncode == 0
    repo.manage("migrate")
    applied = repo.manage("showmigrations", "shop").stdout
    assert applied.count("[X]") == 5


def test_renumber_current_side(repo: MiniProject) -> None:
    """``--renumber current`` keeps the incoming branch's numbers and moves HEAD's."""
    make_branches(repo)
    merge_feature(repo)
    out = repo.manage("migrationversion", "--rebase", "shop", "--renumber", "current").stdout
    assert out.splitlines()[0] == (
        "shop: renamed 0002_category_description -> 0005_category_description"
    )
    assert repo.version("shop") == "0005_category_description\n"
    assert dependencies(repo, "shop", "0005_category_description") == [("shop", "0004_backfill")]
    # orders.0002 depends on 0004_backfill, which did not move.
    assert dependencies(repo, "orders", "0002_order_product") == [("shop", "0004_backfill")]
    repo.manage("migrate")
    assert repo.manage("check").returncode == 0
